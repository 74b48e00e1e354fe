"""The pre-flight: a request that does not fit the model's context stops the run before any forward pass, in
one line naming the task, the request and the lengths; a request is never cut silently; a benchmark's own
truncation rule cuts exactly as its reference code does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from support import TRAINING_TEXTS

import mu_eval
from mu_eval.backend import ContextLengthError
from mu_eval.backends.hf import HFBackend
from mu_eval.cli import main
from mu_eval.engine import Engine
from mu_eval.requests import Choose, Generate, Score, Truncation

CONTEXT = 64


@pytest.fixture(scope="module")
def short_checkpoint(tmp_path_factory) -> Path:
    """A tiny Llama with 64 positions and the support tokenizer."""
    from mu_eval.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("short") / "model", TRAINING_TEXTS, seed=0, vocab_size=600,
                                 max_position_embeddings=CONTEXT)


@pytest.fixture()
def forward_calls():
    """Every module forward of any torch model in this process, counted (a real torch hook)."""
    calls: list[str] = []
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, output: calls.append(type(module).__name__))
    yield calls
    handle.remove()


@pytest.fixture(scope="module")
def short_backend(short_checkpoint) -> HFBackend:
    return HFBackend.from_pretrained(str(short_checkpoint), device="cpu")


def test_muse_on_a_short_context_model_stops_before_any_forward_pass_with_exit_2(
    short_checkpoint, benchmark_data, forward_calls, capsys
):
    muse = benchmark_data / "muse-news"
    status = main(["--model", str(short_checkpoint), "--tasks", "muse_news", "--data-dir", str(muse), "--limit", "2",
                   "--no-cache", "--quiet"])
    output = capsys.readouterr().err
    assert status == 2
    assert forward_calls == []
    assert "Traceback" not in output
    (err,) = (line for line in output.splitlines() if line.startswith("mu-eval:"))  # one line (and load progress)
    # the first request is the first VerbMem prompt: its lengths counted here with the model's own tokenizer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(short_checkpoint)
    verbmem = json.loads((muse / "verbmem" / "forget.json").read_text())
    prompt_tokens = len(tokenizer(verbmem[0]["prompt"])["input_ids"])
    privleak = [json.loads((muse / "privleak" / f"{split}.json").read_text())[:2] for split in ("forget", "holdout")]
    longest = max(len(tokenizer(text)["input_ids"]) - 1 for texts in privleak for text in texts)
    assert err.startswith(f"mu-eval: error: task 'muse_news': request 1 of 10 (generate, prompt "
                          f"{verbmem[0]['prompt'][:40]!r}"[:-1])
    assert (f"prompt of {prompt_tokens} tokens + max_new_tokens 128 needs {prompt_tokens + 128} positions, more than "
            f"the model's context of {CONTEXT} (the benchmark defines no truncation)") in err
    # every MUSE request is longer than 64 positions: 2 VerbMem, 4 KnowMem prompts, 4 PrivLeak texts
    assert err.endswith(f"; 9 more requests of this run do not fit (the longest needs {longest})")


def test_the_pre_flight_comes_before_an_unlearning_method_trains(short_checkpoint, benchmark_data, forward_calls):
    with pytest.raises(ContextLengthError, match="task 'muse_news': request 1 of 2 "):
        mu_eval.evaluate(str(short_checkpoint), ["muse_news"], task_options={"muse_news": {"parts": ["verbmem"]}},
                         method="grad_ascent", method_options={"steps": 1}, data_dir=benchmark_data / "muse-news",
                         limit=2, use_cache=False, progress=False)
    assert forward_calls == []


def test_a_later_request_that_does_not_fit_stops_the_run_before_the_first_is_answered(short_backend, forward_calls):
    """Generation is answered before scoring in the sweep: without the pre-flight the generation would run."""

    class Mixed(mu_eval.Task):
        name = "mixed"

        def build_requests(self, ctx):
            return [Generate("Question: Who wrote Hamlet?\nAnswer:", 4), Score("", "Water boils. " * 40)]

        def process_results(self, results, ctx):
            raise AssertionError("never reached")

    expected = (r"^task 'mixed': request 2 of 2 \(score, context '' \+ "
                r"continuation 'Water boils. Water boils. Water boils. W…'\): text of")
    with pytest.raises(ContextLengthError, match=expected):
        mu_eval.evaluate(short_backend, [Mixed()], use_cache=False, progress=False)
    assert forward_calls == []


def test_a_batch_never_cuts_a_request_silently(short_backend, forward_calls):
    """Without the pre-flight (a direct call), the backend refuses; it used to keep the prompt's last tokens."""
    long_prompt = "Question: What is the capital of France? " * 8
    for kind, request in (("generate", Generate(long_prompt, 4)), ("choose", Choose(long_prompt, (" A", " B"))),
                          ("score", Score(long_prompt, " Paris."))):
        with pytest.raises(ContextLengthError, match=f"more than the model's context of {CONTEXT}"):
            short_backend.answer(kind, [request])
        with pytest.raises(ContextLengthError, match=r"^requests: request 1 of 1 "):
            Engine(short_backend, progress=False).run([request])
    assert forward_calls == []


def test_a_text_of_context_plus_one_tokens_fits(short_backend):
    """The last token is only a target: a text of 65 tokens needs 64 positions, as lm-evaluation-harness
    feeds it; 66 tokens do not fit."""
    tokenizer = short_backend.tokenizer
    words = " ".join(["blue"] * 200)
    ids = tokenizer(words)["input_ids"]
    for length, fits in ((CONTEXT + 1, True), (CONTEXT + 2, False)):
        text = tokenizer.decode(ids[1:length], skip_special_tokens=True)
        request = Score("", text, boundary="prefix")
        text_ids = tokenizer(text)["input_ids"]
        assert len(text_ids) == length
        if not fits:
            with pytest.raises(ContextLengthError, match=f"text of {length} tokens"):
                short_backend.fit(request)
            continue
        assert short_backend.fit(request).truncated is False
        answer = short_backend.score([request])[0]
        with torch.no_grad():
            logits = short_backend.torch_model(torch.tensor([text_ids[:-1]])).logits[0].float()
        expected = torch.log_softmax(logits, -1)[torch.arange(length - 1), torch.tensor(text_ids[1:])]
        assert answer.num_tokens() == length - 1
        assert list(answer.logprobs) == pytest.approx(expected.tolist(), abs=1e-5)


def test_left_truncation_keeps_what_lm_evaluation_harness_keeps(short_backend):
    """lm-eval: (context + continuation)[-(max_length + 1):], the continuation scored whole; a generation prompt
    keeps its last max_length - max_new_tokens tokens; a continuation longer than the context is an error."""
    tokenizer = short_backend.tokenizer
    left = Truncation("left")
    context = "Question: What colour is the sky on a clear day? " * 6
    continuation = " The sky is blue on a clear day."
    request = Score(context.rstrip(), " " + continuation.strip(), boundary="split", truncation=left)
    fit = short_backend.fit(request)
    assert fit.truncated and fit.context == CONTEXT
    context_ids = tokenizer(context.rstrip())["input_ids"]
    whole = context_ids + tokenizer(context.rstrip() + " " + continuation.strip())["input_ids"][len(context_ids):]
    kept = whole[-(CONTEXT + 1):]
    answer = short_backend.score([request])[0]
    with torch.no_grad():
        logits = short_backend.torch_model(torch.tensor([kept[:-1]])).logits[0].float()
    count = len(whole) - len(context_ids)
    positions = torch.arange(len(kept) - 1 - count, len(kept) - 1)
    expected = torch.log_softmax(logits, -1)[positions, torch.tensor(kept[-count:])]
    assert list(answer.logprobs) == pytest.approx(expected.tolist(), abs=1e-5)

    generation = Generate(context, 10, truncation=left)
    assert short_backend.fit(generation).truncated
    prompt = tokenizer(context)["input_ids"]
    assert short_backend._encode_prompt(generation) == prompt[-(CONTEXT - 10):]
    with pytest.raises(ContextLengthError, match="max_new_tokens alone fills the context"):
        short_backend.fit(Generate("Hi", CONTEXT, truncation=left))
    with pytest.raises(ContextLengthError, match="its continuation does not fit"):
        short_backend.fit(Score("Hi", context, boundary="split", truncation=left))


def test_right_truncation_scores_exactly_the_tokens_open_unlearning_scores(short_backend):
    """open-unlearning's QA item: prompt + answer and the prompt tokenized with truncation at N, EOS appended when
    the last token is not EOS, labels after len(prompt ids); restated here with the tokenizer directly."""
    tokenizer = short_backend.tokenizer
    cap = 24
    rule = Truncation("right", cap)
    prompt = "Question: Who wrote Hamlet?\nAnswer: "
    for answer_text in ("William Shakespeare wrote Hamlet.", "William Shakespeare wrote Hamlet. " * 6):
        chat = tokenizer(prompt + answer_text, add_special_tokens=True, max_length=cap, truncation=True)["input_ids"]
        if chat[-1] != tokenizer.eos_token_id:
            chat = chat + [tokenizer.eos_token_id]
        prompt_ids = tokenizer(prompt, add_special_tokens=True, max_length=cap, truncation=True)["input_ids"]
        labels = chat[len(prompt_ids):]
        with torch.no_grad():
            logits = short_backend.torch_model(torch.tensor([chat])).logits[0].float()
        positions = torch.arange(len(prompt_ids) - 1, len(chat) - 1)
        expected = torch.log_softmax(logits, -1)[positions, torch.tensor(labels)]
        request = Score(prompt, answer_text, True, "prefix", rule)
        fit = short_backend.fit(request)
        assert fit.truncated == (len(tokenizer(prompt + answer_text)["input_ids"]) > cap)
        answer = short_backend.score([request])[0]
        assert answer.num_tokens() == len(labels)
        assert list(answer.logprobs) == pytest.approx(expected.tolist(), abs=1e-5)
    long_prompt = "Question: Who wrote Hamlet? " * 10
    generation = Generate(long_prompt, 5, truncation=rule)
    assert short_backend.fit(generation).truncated
    cut = tokenizer(long_prompt, max_length=cap, truncation=True)["input_ids"]
    assert short_backend._encode_prompt(generation) == cut
    with pytest.raises(ValueError, match="boundary 'prefix' only"):
        Score(prompt, "x", boundary="offsets", truncation=rule)


def test_task_info_and_engine_count_the_requests_a_rule_cut(short_backend):
    left = Truncation("left")
    fits, long = "Question: Who wrote Hamlet?\nAnswer:", "Question: Who wrote Hamlet? " * 12 + "\nAnswer:"

    class Questions(mu_eval.Task):
        name = "questions"

        def build_requests(self, ctx):
            return [Choose(text, (" A", " B"), left) for text in (fits, long, long)]

        def process_results(self, results, ctx):
            return mu_eval.TaskResult(metrics={"first": mu_eval.MetricValue(results[0].choice, 1, None)})

    class Plain(Questions):
        name = "plain"

        def build_requests(self, ctx):
            return [Generate(fits, 4)]

        def process_results(self, results, ctx):
            return mu_eval.TaskResult(metrics={"tokens": mu_eval.MetricValue(results[0].num_new_tokens, 1, None)})

    report = mu_eval.evaluate(short_backend, [Questions(), Plain()], use_cache=False, progress=False)
    assert report.tasks["questions"]["info"]["truncated"] == 2  # the long question twice, as the task asked
    assert "truncated" not in report.tasks["plain"]["info"]  # no rule: nothing can be cut, nothing to count
    assert report["engine"]["truncated"] == 2
    assert report["engine"]["truncated_by_source"] == {"questions": 2}


def test_an_explicit_max_length_keys_the_answer_cache(short_checkpoint, tmp_path):
    """A rule's cut depends on max_length: answers cut at 40 positions are not served to a run at 64."""
    long = "Question: Who wrote Hamlet? " * 7 + "\nAnswer:"  # about 52 tokens

    class Long(mu_eval.Task):
        name = "long"

        def build_requests(self, ctx):
            return [Choose(long, (" A", " B"), Truncation("left"))]

        def process_results(self, results, ctx):
            return mu_eval.TaskResult(metrics={}, items={"logprobs": list(results[0].logprobs)})

    def run(**model_args):
        return mu_eval.evaluate(str(short_checkpoint), [Long()], model_args=model_args, cache_dir=tmp_path,
                                progress=False)

    cut, whole = run(max_length=40), run()
    again = run(max_length=40)
    assert cut["model"]["max_length"] == 40 and "max_length" not in whole["model"]
    assert cut.tasks["long"]["info"]["truncated"] == 1 and whole.tasks["long"]["info"]["truncated"] == 0
    assert whole["engine"]["from_cache"] == 0 and again["engine"]["from_cache"] == 1
    assert cut.tasks["long"]["items"]["logprobs"] != pytest.approx(whole.tasks["long"]["items"]["logprobs"])
