"""The vllm backend against the hf backend on the same tiny float32 checkpoint: vLLM's log-probs, greedy texts
(stop strings, EOS and per-request max_new_tokens), choices, the context rule, and whole reports.

Tolerance: log-probs within 1e-4 (absolute; vLLM's CPU kernels and transformers' differ in the order of
float32 sums, about 1e-6 here); texts, picks and flags exactly equal; report metrics within 1e-4 relative.
"""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
from support import FACTS

import mu_eval
from mu_eval.backend import ContextLengthError
from mu_eval.backends.context_fit import prompt_ids, score_within
from mu_eval.engine import Engine
from mu_eval.requests import Choose, Generate, Score, Truncation

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="not applicable here: vllm is not installed")

TOLERANCE = 1e-4
LETTERS = (" A", " B", " C", " D")


def test_the_prompts_are_formatted_and_encoded_alike(vllm_backend, hf_backend):
    question = FACTS[0][0]
    assert vllm_backend.has_chat_template() and hf_backend.has_chat_template()
    prompt = vllm_backend.chat_formatter()(question)
    assert prompt == hf_backend.chat_formatter()(question) and prompt.startswith("<s><|user|>")
    # the template's own BOS is not doubled, on either backend: both encode through context_fit
    ids = prompt_ids(vllm_backend.tokenizer, prompt)[0]
    assert ids.count(vllm_backend.tokenizer.bos_token_id) == 1


def test_vllm_log_probs_and_argmax_flags_equal_the_hf_scores(vllm_backend, hf_backend):
    """vLLM's prompt log-probs of the very tokens the hf backend scores (the backend itself sends `Score` to the
    hf model, so that Min-K%++ gets the full distribution: its answers are the hf backend's)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    chat = hf_backend.chat_formatter()
    own = hf_backend.generate([Generate(chat(FACTS[0][0]), 12)])[0].text  # the model's greedy tokens: argmax
    requests = ([Score(chat(q), a, append_eos=True, vocab_stats=True) for q, a in FACTS[:5]]
                + [Score(f"Question: {q}\nAnswer:", f" {a}", boundary="split") for q, a in FACTS[5:]]
                + [Score(chat(FACTS[0][0]), own, boundary="prefix")])
    expected = hf_backend.score(requests)
    assert repr(vllm_backend.score(requests)) == repr(expected)  # NaN where no statistics were asked for
    assert all(math.isfinite(v) for a in expected[:5] for v in a.expected_logprob + a.logprob_variance)
    encoded = [score_within(hf_backend.tokenizer, r, None)[0] for r in requests]
    outputs = vllm_backend.llm.generate([TokensPrompt(prompt_token_ids=list(e.input_ids)) for e in encoded],
                                        SamplingParams(max_tokens=1, prompt_logprobs=1, detokenize=False),
                                        use_tqdm=False)
    for answer, e, output in zip(expected, encoded, outputs):
        positions = range(e.start, len(e.input_ids))
        entries = [output.prompt_logprobs[p][e.input_ids[p]] for p in positions]
        assert [x.logprob for x in entries] == pytest.approx(answer.logprobs, abs=TOLERANCE)
        assert tuple(x.rank == 1 for x in entries) == answer.greedy
    assert any(any(a.greedy) for a in expected) and any(not all(a.greedy) for a in expected)


def generation_requests(chat) -> list[Generate]:
    """Each question asked in one call with three lengths, and with and without stop strings."""
    requests = []
    for index, (question, _) in enumerate(FACTS):
        prompt = chat(question) if index % 2 else f"Question: {question}\nAnswer:"
        requests.append(Generate(prompt, (6, 24, 48)[index % 3]))
        requests.append(Generate(prompt, 48, ("e", "\n")))
    return requests


def test_greedy_texts_are_identical(vllm_backend, hf_backend):
    requests = generation_requests(hf_backend.chat_formatter())
    calls = vllm_backend.counters["vllm_generate_calls"]
    answers = vllm_backend.generate(requests)  # one vLLM call, each row with its own settings
    assert vllm_backend.counters["vllm_generate_calls"] == calls + 1
    expected = Engine(hf_backend, progress=False).run(requests)
    assert [a.text for a in answers] == [e.text for e in expected]
    plain = [(r, a, e) for r, a, e in zip(requests, answers, expected) if not r.stop]
    assert [a.num_new_tokens for _, a, _ in plain] == [e.num_new_tokens for _, _, e in plain]
    # the cases are exercised: some generations end at EOS, some at a stop string, some at max_new_tokens
    assert any(a.num_new_tokens < r.max_new_tokens for r, a, _ in plain)
    assert any(a.num_new_tokens == r.max_new_tokens for r, a, _ in plain)
    assert any(r.stop and len(a.text) < len(u.text) for r, a, u in zip(requests[1::2], answers[1::2], answers[0::2])
               if u.text.startswith(a.text))


def choice_requests() -> list[Choose]:
    single = [Choose(f"Question: {q}\nA. yes\nB. no\nC. maybe\nD. never\nAnswer:", LETTERS) for q, _ in FACTS]
    several = [Choose(f"Question: {q}\nAnswer:", (f" {a}", " I do not know.")) for q, a in FACTS[:3]]
    return single + several


def test_choices_agree(vllm_backend, hf_backend):
    requests = choice_requests()
    expected = Engine(hf_backend, progress=False).run(requests)
    before = dict(vllm_backend.counters)
    answers = Engine(vllm_backend, progress=False).run(requests)
    assert vllm_backend.counters["vllm_choose_calls"] == before["vllm_choose_calls"] + 1  # one call for all
    assert vllm_backend.counters["hf_choose_questions"] == before["hf_choose_questions"] + 3  # several tokens
    for answer, reference in zip(answers, expected):
        assert list(answer.logprobs) == pytest.approx(list(reference.logprobs), abs=TOLERANCE)
        assert answer.single_pass == reference.single_pass
        assert max(range(len(answer.logprobs)), key=answer.logprobs.__getitem__) == max(
            range(len(reference.logprobs)), key=reference.logprobs.__getitem__)
    assert sum(a.single_pass for a in answers) == len(FACTS)
    # with one candidate per question, the options vLLM did not return are answered by the hf model, exactly
    wide, vllm_backend.choose_top_k = vllm_backend.choose_top_k, 1
    try:
        narrow = vllm_backend.choose(requests[: len(FACTS)])
    finally:
        vllm_backend.choose_top_k = wide
    assert [v for a in narrow for v in a.logprobs] == pytest.approx(
        [v for e in expected[: len(FACTS)] for v in e.logprobs], abs=TOLERANCE)


def text_of(tokenizer, tokens: int) -> str:
    """A text whose prompt ids (BOS included) are exactly `tokens` long."""
    for unit in (" the", " a", " x", "a"):
        count = tokens
        while count > 0:
            length = len(prompt_ids(tokenizer, "Q:" + unit * count)[0])
            if length == tokens:
                return "Q:" + unit * count
            if length < tokens:
                break
            count -= 1
    raise AssertionError(f"no text of exactly {tokens} tokens")


def score_of(tokenizer, tokens: int) -> Score:
    """A scored text of exactly `tokens` tokens (BOS and EOS included)."""
    for cut in range(1, 12):
        request = Score(text_of(tokenizer, tokens - cut), " the end", append_eos=True)
        if len(score_within(tokenizer, request, None)[0].input_ids) == tokens:
            return request
    raise AssertionError(f"no scored text of exactly {tokens} tokens")


def test_a_request_the_size_of_the_context_is_cut_by_its_rule_or_refused_before_any_work(vllm_backend, hf_backend):
    """vLLM refuses a prompt of exactly max_model_len (it must generate a token), and with it the whole call."""
    tokenizer, context = vllm_backend.tokenizer, vllm_backend.context_length()
    full = text_of(tokenizer, context)
    left = Truncation("left")
    engine = Engine(vllm_backend, progress=False)
    cut_choice = Choose(full, LETTERS, truncation=left)
    cut_prompt = Generate(text_of(tokenizer, context - 4), 8, truncation=left)
    whole_score = score_of(tokenizer, context + 1)  # answered by the hf model, which fits it
    answers = engine.run([cut_choice, cut_prompt, whole_score])
    assert engine.stats.truncated == 2 and all(math.isfinite(v) for v in answers[0].logprobs)
    assert answers[1] == Engine(hf_backend, progress=False).run([cut_prompt])[0]  # both keep the last 504
    assert repr(answers[2]) == repr(hf_backend.score([whole_score])[0])
    calls = dict(vllm_backend.counters)
    with pytest.raises(ContextLengthError, match=r"request 1 of 2 .*does not fit|more than the model's context"):
        Engine(vllm_backend, progress=False).run([Choose(full, LETTERS), Generate(full[:40], 4)])
    assert vllm_backend.counters == calls  # refused before any model work


def write_wmdp(folder) -> None:
    rows = [{"question": f"Which {word} property matters most?", "answer": index % 4,
             "choices": [f"{word} {c}" for c in ("size", "charge", "shape", "speed")]}
            for index, word in enumerate(("virus", "protein", "cell", "gene", "toxin", "enzyme"))]
    (folder / "wmdp-bio.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def metric_values(report) -> dict[str, float | None]:
    return {f"{task}/{name}": metric.get("value") for task, section in report.tasks.items()
            for name, metric in section["metrics"].items()}


def test_whole_reports_equal_metric_by_metric(vllm_backend, parity_checkpoint, tmp_path):
    """synthetic_forget10 (generation and scores) and wmdp_bio (choices), with the MIA attack (weights and
    full distributions through the hf model beside vLLM): every metric within 1e-4 relative."""
    write_wmdp(tmp_path)
    options = {"tasks": ["synthetic_forget10", "wmdp_bio"], "attacks": ["mia"], "data_dir": tmp_path, "limit": 4,
               "task_options": {"synthetic_forget10": {"people": 20, "max_new_tokens": 24},
                                "wmdp_bio": {"forget_corpora": "none", "retain_corpora": "none"}}, "progress": False}
    served = mu_eval.evaluate(vllm_backend, **options)
    reference = mu_eval.evaluate(str(parity_checkpoint), model_args={"dtype": "float32"}, device="cpu", **options)
    assert served.data["model"]["engines"] == {"score": "hf", "generate": "vllm", "choose": "vllm", "weights": "hf"}
    values, expected = metric_values(served), metric_values(reference)
    assert values.keys() == expected.keys() and len(values) > 10
    for name, value in values.items():
        if value is None or expected[name] is None:
            assert value == expected[name], name
        else:
            assert value == pytest.approx(expected[name], rel=TOLERANCE, abs=1e-9), name
    assert served.data["attacks"]["mia"] == reference.data["attacks"]["mia"]


def test_once_the_weights_change_the_hf_model_answers_everything(vllm_backend, hf_backend):
    """A method replaces `torch_model`: vLLM's copy is stale, so generation and choices go to the new weights."""
    import copy

    import torch

    original = vllm_backend.torch_model
    changed = copy.deepcopy(original)
    with torch.no_grad():
        changed.lm_head.weight.mul_(-1.0)  # another model: its greedy text differs
    prompt = [Generate("Question: Who wrote Hamlet?\nAnswer:", 12)]
    before = vllm_backend.generate(prompt)
    calls = vllm_backend.counters["vllm_generate_calls"]
    vllm_backend.torch_model = changed
    try:
        assert vllm_backend.identity()["engines"]["generate"].startswith("hf")
        after = vllm_backend.generate(prompt)
        assert vllm_backend.counters["vllm_generate_calls"] == calls  # vLLM was not asked
        assert after != before and after == hf_backend_of(changed, hf_backend).generate(prompt)
    finally:
        vllm_backend.torch_model = original
        vllm_backend.vllm_current = True


def hf_backend_of(model, like):
    from mu_eval.backends.hf import HFBackend

    return HFBackend.from_model(model, like.tokenizer)


def test_a_setting_vllm_refuses_is_a_one_line_error(parity_checkpoint, capsys):
    """vLLM's own checks run before its engine starts; what they refuse reaches the user as one line."""
    from mu_eval.backend import BackendError
    from mu_eval.backends.vllm import VLLMBackend
    from mu_eval.cli import main

    with pytest.raises(BackendError, match=r"vLLM could not start on .*max_model_len"):
        VLLMBackend.from_pretrained(str(parity_checkpoint), {"dtype": "float32", "max_length": "100000"}, device="cpu")
    status = main(["--model", str(parity_checkpoint), "--backend", "vllm", "--tasks", "synthetic_forget01",
                   "--model-args", "dtype=float32,max_length=100000", "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 2 and "vLLM could not start" in err and "Traceback" not in err
