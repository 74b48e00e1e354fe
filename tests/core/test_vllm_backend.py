"""The vllm backend's parts that run without vLLM: its options, the length rule it keeps, how vLLM's outputs
become answers, the engine handing it whole request sets, and a clear error where vLLM is not installed.
tests/vllm_parity runs it for real against the hf backend (in the vLLM environment)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import pytest

from mu_eval.backend import ContextLengthError
from mu_eval.backends.hf import HFBackend
from mu_eval.backends.hf_loading import ModelArgsError
from mu_eval.backends.vllm import VLLMBackend, error_summary
from mu_eval.backends.vllm_engine import (
    check_prompt_lengths,
    generated_result,
    generation_settings,
    option_logprobs,
)
from mu_eval.backends.vllm_options import VLLMModelArgs
from mu_eval.cli import main
from mu_eval.engine import Engine
from mu_eval.requests import Generate


@dataclass
class Logprob:
    """vLLM's per-token record: log-prob and rank (1 = argmax)."""

    logprob: float
    rank: int


def test_each_generation_keeps_its_own_limit_stop_strings_and_the_models_eos():
    """One vLLM call mixes tasks (TOFU's 200 new tokens, MUSE's 128 and a stop string): none may take another
    row's settings; EOS ids are the hf backend's; vLLM detokenises only where it must find a stop string."""
    requests = [Generate("a", 200), Generate("b", 128, ("\n\n",)), Generate("c", 5, ("Q:", "\n"))]
    assert generation_settings(requests, [2, 7]) == [
        {"temperature": 0.0, "max_tokens": 200, "stop": None, "stop_token_ids": [2, 7], "detokenize": False},
        {"temperature": 0.0, "max_tokens": 128, "stop": ["\n\n"], "stop_token_ids": [2, 7], "detokenize": True},
        {"temperature": 0.0, "max_tokens": 5, "stop": ["Q:", "\n"], "stop_token_ids": [2, 7], "detokenize": True},
    ]


def test_a_prompt_of_exactly_max_model_len_is_named_before_vllm_refuses_the_call():
    """vLLM refuses a prompt that leaves no room for one new token, and with it the whole call: the backend
    names the request instead."""
    check_prompt_lengths([[1] * 15, [1] * 10], [1, 6], max_model_len=16)  # both fit exactly
    with pytest.raises(ContextLengthError, match=r"request 2 of 2 .* 16 tokens \+ 1 new tokens needs 17") as error:
        check_prompt_lengths([[1] * 3, [1] * 16], [1, 1], max_model_len=16)
    assert (error.value.needed, error.value.context) == (17, 16)
    with pytest.raises(ContextLengthError, match="needs 17 positions"):
        check_prompt_lengths([[1] * 10], [7], max_model_len=16)


def test_generated_tokens_are_decoded_by_the_hf_backends_rule(tiny_checkpoint):
    """Stop at the first EOS id, skip padding, decode without special tokens, cut at the first stop string."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    text = "The author was born in Paris.\n\nQuestion: more"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    with_specials = ids[:3] + [pad] + ids[3:] + [eos] + ids[:4]
    plain = generated_result(with_specials, Generate("p", 64), tokenizer, [eos], pad)
    assert plain.text == text and plain.num_new_tokens == len(ids)
    stopped = generated_result(with_specials, Generate("p", 64, ("\n\n",)), tokenizer, [eos], pad)
    assert stopped.text == "The author was born in Paris."


def test_options_outside_the_top_k_are_not_guessed():
    top = {5: Logprob(-0.5, 1), 9: Logprob(-1.25, 2), 11: Logprob(-3.0, 3)}
    assert option_logprobs(top, [9, 5, 11]) == (-1.25, -0.5, -3.0)
    assert option_logprobs(top, [9, 12]) is None  # 12 is not among the top-k
    assert option_logprobs(top, [9, None]) is None  # an option of several tokens


def test_model_args_pass_through_to_vllm_and_unknown_ones_are_errors():
    args = VLLMModelArgs.parse({"tensor_parallel_size": "2", "data_parallel_size": "1",
                                "gpu_memory_utilization": "0.5", "max_length": "128", "dtype": "float16"})
    kwargs = args.llm_kwargs("float16")
    assert {k: kwargs[k] for k in ("tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "dtype")} == {
        "tensor_parallel_size": 2, "gpu_memory_utilization": 0.5, "max_model_len": 128, "dtype": "float16"}
    assert kwargs["generation_config"] == "vllm"  # the checkpoint's sampling defaults never apply
    defaults = VLLMModelArgs.parse(None).llm_kwargs("float32")
    assert not {"tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization", "max_model_len",
                "kv_cache_memory_bytes", "max_logprobs"} & set(defaults)
    # on CPU vLLM would reserve 92% of the machine's memory: a 1 GiB cache unless a size or a share is given
    assert VLLMModelArgs.parse(None).llm_kwargs("float32", "cpu")["kv_cache_memory_bytes"] == 1 << 30
    assert "kv_cache_memory_bytes" not in args.llm_kwargs("float16", "cpu")  # a share was given
    sized = VLLMModelArgs.parse({"kv_cache_memory_bytes": "5000000", "choose_top_k": "600"})
    sized = sized.llm_kwargs("float32", "cpu")
    assert (sized["kv_cache_memory_bytes"], sized["max_logprobs"]) == (5_000_000, 600)
    assert args.hf_model_args("float16", 128) == {"dtype": "float16", "revision": None, "trust_remote_code": False,
                                                  "max_length": 128}
    with pytest.raises(ModelArgsError, match="tensor_parallel_size"):
        VLLMModelArgs.parse({"tensor_parallel": "2"})
    with pytest.raises(ModelArgsError, match="at most 1"):
        VLLMModelArgs.parse({"gpu_memory_utilization": "1.5"})
    with pytest.raises(ModelArgsError, match="at least 1"):
        VLLMModelArgs.parse({"data_parallel_size": "0"})
    # vLLM's offline engine refuses several copies in one process: said at once, not after a minute's start
    with pytest.raises(ModelArgsError, match="data_parallel_size=4: vLLM's offline engine runs one copy per process"):
        VLLMModelArgs.parse({"data_parallel_size": "4"})
    with pytest.raises(ModelArgsError, match="peft"):  # an adapter is the hf backend's, never silently dropped
        VLLMModelArgs.parse({"peft": "adapter/"})


class WholeGenerationSets(HFBackend):
    """An hf backend that declares it schedules generation itself, as the vllm backend does."""

    def batches_itself(self, kind: str) -> bool:
        return kind == "generate"


def test_the_engine_hands_a_backend_that_batches_itself_the_whole_request_set(tiny_checkpoint):
    prompts = [Generate(f"Question {i}: who wrote it?" + " more" * i, 2) for i in range(6)]
    budgeted = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    Engine(budgeted, generation_budget=40, progress=False).run(prompts)
    whole = WholeGenerationSets.from_pretrained(str(tiny_checkpoint), device="cpu")
    engine = Engine(whole, generation_budget=40, progress=False)
    answers = engine.run(prompts)
    assert budgeted.counters["generate_calls"] > 1
    assert whole.counters["generate_calls"] == 1 and engine.stats.batches == 1
    assert [a.text for a in answers] == [a.text for a in Engine(budgeted, progress=False).run(prompts)]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="not applicable here: vLLM is installed")
def test_without_vllm_the_backend_says_how_to_get_it(tiny_checkpoint, capsys):
    with pytest.raises(ModelArgsError, match="attn_implementation"):  # the options are read before the import
        VLLMBackend.from_pretrained(str(tiny_checkpoint), {"attn_implementation": "sdpa"})
    from support import register_support_task

    status = main(["--model", str(tiny_checkpoint), "--tasks", register_support_task(), "--backend", "vllm"])
    err = capsys.readouterr().err
    assert status == 2 and "mu-eval[vllm]" in err and "docs/vllm.md" in err


def test_a_failed_vllm_start_is_summed_up_in_one_line():
    """vLLM's configuration errors are pydantic's: the first line only counts them, the second names the setting."""
    error = ValueError("1 validation error for ModelConfig\n  Value error, User-specified max_model_len (100000) is "
                       "greater than the derived max_model_len (512) [type=value_error]\n"
                       "    For further information visit https://errors.pydantic.dev/")
    summary = error_summary(error)
    assert summary.startswith("1 validation error for ModelConfig; Value error, User-specified max_model_len (100000)")
    assert "\n" not in summary and "further information" not in summary
    assert error_summary(RuntimeError("")) == "RuntimeError"
    assert len(error_summary(RuntimeError("x" * 1000))) == 400
