"""The optional vLLM backend: its answer conversion, and a clear error where vLLM is not installed."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

import pytest

from mu_eval.backend import BackendError
from mu_eval.backends.vllm import VLLMBackend, generation_settings, score_from_prompt_logprobs
from mu_eval.cli import main
from mu_eval.requests import Generate


@dataclass
class Logprob:
    """vLLM's per-token record: log-prob and rank (1 = argmax)."""

    logprob: float
    rank: int


def test_prompt_logprobs_become_score_answers_for_the_continuation():
    input_ids = (1, 10, 11, 12, 2)
    prompt_logprobs = [None, {10: Logprob(-0.5, 1)}, {11: Logprob(-2.0, 3), 7: Logprob(-0.1, 1)},
                       {12: Logprob(-1.0, 1)}, {2: Logprob(-0.25, 2), 9: Logprob(-0.2, 1)}]
    result = score_from_prompt_logprobs(prompt_logprobs, input_ids, start=2, eos_appended=True)
    assert result.logprobs == (-2.0, -1.0, -0.25)
    assert result.greedy == (False, True, False)
    assert result.nll(include_eos=False) == pytest.approx(1.5)
    assert all(math.isnan(v) for v in result.expected_logprob + result.logprob_variance)


def test_missing_target_logprob_is_an_error():
    with pytest.raises(BackendError, match="position 1"):
        score_from_prompt_logprobs([None, {5: Logprob(-1.0, 1)}], (1, 6), start=1, eos_appended=False)


def test_each_generation_keeps_its_own_limit_and_stop_strings():
    """One engine batch can mix tasks (TOFU's 200 new tokens, MUSE's 128 and a stop string): none may take
    another row's settings."""
    requests = [Generate("a", 200), Generate("b", 128, ("\n\n",)), Generate("c", 5, ("Q:", "\n"))]
    assert generation_settings(requests) == [
        {"temperature": 0.0, "max_tokens": 200, "stop": None},
        {"temperature": 0.0, "max_tokens": 128, "stop": ["\n\n"]},
        {"temperature": 0.0, "max_tokens": 5, "stop": ["Q:", "\n"]},
    ]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="not applicable here: vLLM is installed")
def test_without_vllm_the_backend_says_how_to_get_it(tiny_checkpoint, capsys):
    with pytest.raises(BackendError, match=r"mu-eval\[vllm\]"):
        VLLMBackend.from_pretrained(str(tiny_checkpoint))
    from support import register_support_task

    status = main(["--model", str(tiny_checkpoint), "--tasks", register_support_task(), "--backend", "vllm"])
    assert status == 2 and "mu-eval[vllm]" in capsys.readouterr().err
