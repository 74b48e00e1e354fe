"""Vocabulary statistics on demand and the chunked output head: the same numbers as one full softmax."""

from __future__ import annotations

import math

import pytest
import torch

from mu_eval.backends import hf_scoring
from mu_eval.backends.hf import HFBackend
from mu_eval.backends.hf_encoding import encode_score
from mu_eval.cache import AnswerCache, request_key
from mu_eval.requests import Score, Truncation


@pytest.fixture(scope="module")
def backend(tiny_checkpoint):
    return HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")


REQUESTS = [
    Score("Question: Who wrote Hamlet?\nAnswer:", " William Shakespeare wrote Hamlet.", append_eos=True),
    Score("The sky is", " blue on a clear day.", vocab_stats=True),
    Score("", "The quick brown fox jumps over the lazy dog.", vocab_stats=True),
    Score("Bees make", " honey from the nectar of flowers."),
]


def reference_rows(model, tokenizer, request: Score) -> list[tuple[float, bool, float, float]]:
    """From the model's full logits in float64: log p(target), argmax, E[log p], Var[log p] per scored token."""
    encoded = encode_score(tokenizer, request.context, request.continuation, request.append_eos, None)
    ids = list(encoded.input_ids)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    rows = []
    for position in range(encoded.start, len(ids)):
        dist = logp[position - 1]
        probs = dist.exp()
        mean = float((probs * dist).sum())
        variance = float((probs * (dist - mean) ** 2).sum())
        rows.append((float(dist[ids[position]]), int(dist.argmax()) == ids[position], mean, variance))
    return rows


def check_against_reference(backend, answers) -> None:
    for request, answer in zip(REQUESTS, answers):
        expected = reference_rows(backend.torch_model, backend.tokenizer, request)
        assert len(answer.logprobs) == len(expected) > 0
        for index, (logprob, greedy, mean, variance) in enumerate(expected):
            assert answer.logprobs[index] == pytest.approx(logprob, abs=1e-5)
            assert answer.greedy[index] == greedy
            if request.vocab_stats:
                assert answer.expected_logprob[index] == pytest.approx(mean, abs=1e-5)
                assert answer.logprob_variance[index] == pytest.approx(variance, rel=1e-4)
            else:
                assert math.isnan(answer.expected_logprob[index]) and math.isnan(answer.logprob_variance[index])


def test_statistics_only_where_asked_and_equal_to_a_full_softmax(backend):
    check_against_reference(backend, backend.score(REQUESTS))


@pytest.mark.parametrize("rows_per_chunk", [1, 3, 7])
def test_chunked_head_and_statistics_equal_the_whole_batch(backend, monkeypatch, rows_per_chunk):
    whole = backend.score(REQUESTS)
    vocabulary = backend.torch_model.get_output_embeddings().weight.shape[0]
    monkeypatch.setattr(hf_scoring, "CHUNK_ELEMENTS", vocabulary * rows_per_chunk)
    assert hf_scoring.chunk_rows(vocabulary) == rows_per_chunk
    calls = []
    head = backend.torch_model.get_output_embeddings()
    hook = head.register_forward_hook(lambda module, args, output: calls.append(output.shape[0]))
    try:
        chunked = backend.score(REQUESTS)
    finally:
        hook.remove()
    scored = sum(len(a.logprobs) for a in whole)
    assert sum(calls) == scored and max(calls) == rows_per_chunk and len(calls) == math.ceil(scored / rows_per_chunk)
    check_against_reference(backend, chunked)
    for a, b in zip(whole, chunked):
        assert a.greedy == b.greedy
        # float32 sums over other matrix shapes: equal to a few units in the last place
        assert a.logprobs == pytest.approx(b.logprobs, rel=1e-6, abs=1e-6)
        assert a.expected_logprob == pytest.approx(b.expected_logprob, rel=1e-6, nan_ok=True)


def test_a_flag_does_not_change_the_other_numbers(backend):
    plain, asked = backend.score([Score("The sky is", " blue."), Score("The sky is", " blue.", vocab_stats=True)])
    assert plain.logprobs == pytest.approx(asked.logprobs, abs=1e-6) and plain.greedy == asked.greedy
    assert all(math.isnan(v) for v in plain.expected_logprob) and all(math.isfinite(v) for v in asked.expected_logprob)


def test_the_cache_key_tells_the_two_apart_and_keeps_older_keys():
    plain = Score("Question: Who wrote Hamlet?", " Shakespeare", append_eos=True)
    assert request_key(plain) != request_key(Score(plain.context, plain.continuation, True, vocab_stats=True))
    # keys written before the field existed (computed then): a request left at the default still finds them
    assert request_key(plain) == "eb26f34b219dbd90bd145e0147566cbbce828125f72bbd98d93180d29d06d607"
    capped = Score("Q", " A", boundary="prefix", truncation=Truncation("right", 512))
    assert request_key(capped) == "0c0f37030586e3a9df664f19aba809fc270a83fb8ed1785be4756ace8a83e1ff"


def test_a_cached_answer_without_statistics_does_not_serve_a_request_for_them(backend, tmp_path):
    plain = Score("The sky is", " blue.")
    asked = Score("The sky is", " blue.", vocab_stats=True)
    cache = AnswerCache(tmp_path, backend.identity())
    cache.put_many({plain: backend.score([plain])[0]})
    found = cache.get_many([plain, asked])
    cache.close()
    assert list(found) == [plain]
    assert all(math.isnan(v) for v in found[plain].expected_logprob)  # NaN survives the JSON round trip
