"""The HF backend's Score answers, checked against an independent computation and across batch shapes."""

from __future__ import annotations

import math
import random

import pytest
import torch

from mu_eval.backends.hf import HFBackend
from mu_eval.requests import Score


@pytest.fixture(scope="module")
def backend(tiny_checkpoint):
    return HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")


def mixed_requests(count: int, seed: int = 0) -> list[Score]:
    words = "the quick brown fox jumps over lazy dog Paris capital France honey bees spider legs".split()
    rng = random.Random(seed)
    requests = []
    for index in range(count):
        context = " ".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        continuation = " " + " ".join(rng.choice(words) for _ in range(rng.randint(1, 25)))
        requests.append(Score(context, continuation, append_eos=index % 2 == 0, vocab_stats=index % 3 != 0))
    return requests


def reference_statistics(model, tokenizer, context: str, continuation: str, append_eos: bool):
    """Independent path: tokenise the joint text, find continuation tokens by decoding prefixes, full softmax."""
    ids = tokenizer(context + continuation)["input_ids"]
    context_ids = tokenizer(context)["input_ids"]
    # continuation tokens: those past the longest prefix whose decoded text fits inside the context
    start = len(context_ids)
    while start > 1 and ids[:start] != context_ids[:start]:
        start -= 1
    if append_eos:
        ids = ids + [tokenizer.eos_token_id]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    rows = []
    for position in range(start, len(ids)):
        dist = logp[position - 1]
        target = ids[position]
        mean = float((dist.exp() * dist).sum())
        var = float((dist.exp() * dist * dist).sum()) - mean**2
        rows.append((float(dist[target]), int(dist.argmax()) == target, mean, var))
    return rows


def test_score_matches_independent_full_softmax(backend):
    requests = [
        Score("Question: Who wrote Hamlet?\nAnswer:", " William Shakespeare wrote Hamlet.", append_eos=True,
              vocab_stats=True),
        Score("The sky is", " blue on a clear day.", vocab_stats=True),
    ]
    answers = backend.score(requests)
    for request, answer in zip(requests, answers):
        expected = reference_statistics(
            backend.torch_model, backend.tokenizer, request.context, request.continuation, request.append_eos
        )
        assert len(answer.logprobs) == len(expected)
        for got, (logprob, greedy, mean, var) in zip(
            zip(answer.logprobs, answer.greedy, answer.expected_logprob, answer.logprob_variance), expected
        ):
            assert got[0] == pytest.approx(logprob, abs=1e-4)
            assert got[1] == greedy
            assert got[2] == pytest.approx(mean, abs=1e-4)
            assert got[3] == pytest.approx(var, rel=1e-4)  # centred in float32: no cancellation loss
        assert answer.eos_appended == request.append_eos


def test_continuation_found_by_offsets_covers_every_character(backend):
    tokenizer = backend.tokenizer
    context, continuation = "Answer: Par", "is is the capital"
    answer = backend.score([Score(context, continuation)])[0]
    ids = tokenizer(context + continuation, return_offsets_mapping=True)
    covering = [i for i, (_, end) in enumerate(ids["offset_mapping"]) if end > len(context)]
    assert len(answer.logprobs) == len(covering) > 0
    decoded = tokenizer.decode(ids["input_ids"][covering[0] :])
    assert decoded.endswith(continuation) and continuation in decoded


def test_eos_is_flagged_and_excluded_from_token_metrics(backend):
    with_eos, without = backend.score([Score("The sky is", " blue.", True), Score("The sky is", " blue.", False)])
    assert with_eos.logprobs[:-1] == pytest.approx(without.logprobs, abs=1e-5)
    assert with_eos.num_tokens(include_eos=False) == without.num_tokens() == len(with_eos.logprobs) - 1
    assert with_eos.nll(include_eos=False) == pytest.approx(without.nll(), abs=1e-5)


def test_empty_context_scores_every_token_after_bos(backend):
    text = "The quick brown fox"
    answer = backend.score([Score("", text)])[0]
    ids = backend.tokenizer(text)["input_ids"]
    assert ids[0] == backend.tokenizer.bos_token_id
    assert len(answer.logprobs) == len(ids) - 1


def test_sixty_four_mixed_requests_same_in_one_batch_and_one_at_a_time(backend):
    requests = mixed_requests(64)
    batched = backend.score(requests)
    for request, together in zip(requests, batched):
        alone = backend.score([request])[0]
        assert len(alone.logprobs) == len(together.logprobs)
        for a, b in zip(alone.logprobs + alone.expected_logprob, together.logprobs + together.expected_logprob):
            assert math.isclose(a, b, abs_tol=1e-5) or (math.isnan(a) and math.isnan(b) and not request.vocab_stats)
        assert alone.greedy == together.greedy


def test_head_on_selected_positions_equals_full_logits(backend):
    from mu_eval.backends.hf_scoring import pad_right, selected_logits

    model = backend.torch_model
    input_ids, attention_mask = pad_right([(1, 5, 9, 13, 17), (1, 4, 8)])
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    rows, positions = torch.tensor([0, 0, 1]), torch.tensor([1, 3, 1])
    with torch.no_grad():
        fast = selected_logits(model, inputs, rows, positions)
        full = model(**inputs).logits[rows, positions]
    assert torch.allclose(fast, full, atol=1e-5)


def test_peft_adapter_is_applied_when_scoring(tiny_checkpoint, tmp_path):
    from peft import LoraConfig, get_peft_model

    plain = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    adapted = get_peft_model(plain.torch_model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                           init_lora_weights=False))
    adapted.save_pretrained(tmp_path / "adapter")
    request = Score("The sky is", " blue on a clear day.")
    with_adapter = HFBackend.from_pretrained(str(tiny_checkpoint), {"peft": str(tmp_path / "adapter")}, "cpu")
    without = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    answer = with_adapter.score([request])[0]
    baseline = without.score([request])[0]
    assert abs(answer.nll() - baseline.nll()) > 1e-4
    with torch.no_grad():
        ids = with_adapter.tokenizer("The sky is blue on a clear day.", return_tensors="pt")["input_ids"]
        logp = torch.log_softmax(with_adapter.torch_model(input_ids=ids).logits[0].float(), -1)
    start = len(answer.logprobs)
    expected = [float(logp[p - 1, ids[0, p]]) for p in range(ids.shape[1] - start, ids.shape[1])]
    assert list(answer.logprobs) == pytest.approx(expected, abs=1e-5)
    assert with_adapter.identity()["adapter"] == str(tmp_path / "adapter")
    assert with_adapter.identity()["adapter_sha256"]


def test_choose_single_pass_equals_scoring_each_option(tiny_checkpoint):
    """With options that are single tokens, one next-token pass gives the options' scored log-probs."""
    from mu_eval.requests import Choose

    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    tokenizer = backend.tokenizer
    vocabulary = tokenizer.get_vocab()
    singles = [word for word in ("Ġthe", "Ġsky", "Ġblue", "Ġis") if word in vocabulary]
    assert len(singles) >= 2, "the support texts should make these words single tokens"
    options = tuple(" " + word[1:] for word in singles)
    contexts = ["Question: What colour is the sky?\nAnswer:", "The"]
    answers = backend.choose([Choose(context, options) for context in contexts])
    for context, answer in zip(contexts, answers):
        assert answer.single_pass
        scored = backend.score([Score(context, option) for option in options])
        assert [s.num_tokens() for s in scored] == [1] * len(options)
        assert list(answer.logprobs) == pytest.approx([s.sum_logprob() for s in scored], abs=1e-5)


def test_a_choose_request_costs_two_tokenizer_calls(tiny_checkpoint, monkeypatch):
    """The context is encoded once (for its length, kept for the answer) and the options in one batched
    call, where the joint texts used to be encoded one by one and the context twice."""
    from mu_eval.engine import Engine
    from mu_eval.requests import Choose

    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    calls = []
    tokenizer_class = type(backend.tokenizer)
    original = tokenizer_class.__call__

    def counting(self, *args, **kwargs):
        calls.append(args[0] if args else kwargs.get("text"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tokenizer_class, "__call__", counting)
    requests = [Choose(f"Question {i}: what colour is the sky?\nAnswer:", (" blue", " red", " the")) for i in range(5)]
    answers = Engine(backend, progress=False).run(requests)
    monkeypatch.setattr(tokenizer_class, "__call__", original)
    assert len(calls) == 2 * len(requests)
    assert sum(isinstance(call, list) and len(call) == 3 for call in calls) == len(requests)
    for answer, request in zip(answers, requests):
        alone = backend.choose([request])[0]
        assert answer.single_pass == alone.single_pass
        assert list(answer.logprobs) == pytest.approx(list(alone.logprobs), abs=1e-5)
