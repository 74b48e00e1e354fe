"""Engine pooling, batching and the on-disk answer cache."""

from __future__ import annotations

import pytest
import torch
from support import QATask

import mu_eval
from mu_eval.backends.hf import HFBackend
from mu_eval.cache import AnswerCache
from mu_eval.engine import Engine
from mu_eval.requests import Generate, Score


class ForwardCounter:
    """Counts forward passes of a real model through a forward hook (no mock)."""

    def __init__(self, model):
        self.calls = 0
        self.rows = 0
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, module, args, kwargs_or_output, *rest):
        self.calls += 1

    def close(self):
        self.handle.remove()


def test_engine_deduplicates_and_restores_each_tasks_order(tiny_checkpoint):
    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    shared = Score("The sky is", " blue.")
    first = [Score("A", " b"), shared, Score("Long context " * 5, " tail")]
    second = [shared, Score("Other", " thing")]
    engine = Engine(backend, batch_size=2, progress=False)
    answers = engine.run_tasks({"first": first, "second": second})
    assert engine.stats.requested == 5 and engine.stats.distinct == 4 and engine.stats.answered == 4
    assert answers["first"][1] == answers["second"][0]
    for request, answer in zip(first, answers["first"]):
        alone = backend.score([request])[0]
        assert answer.logprobs == pytest.approx(alone.logprobs, abs=1e-5)


def test_token_budget_batches_count_padding(tiny_checkpoint):
    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    requests = [Score("word " * n, " end") for n in range(1, 21)]
    engine = Engine(backend, batch_size="auto", token_budget=64, progress=False)
    batches = []
    original = backend.score
    backend.score = lambda batch: batches.append(batch) or original(batch)
    engine.run(requests)
    assert sum(len(b) for b in batches) == len(requests)
    for batch in batches:
        longest = max(backend.request_length(r) for r in batch)
        assert len(batch) == 1 or len(batch) * longest <= 64
    lengths = [backend.request_length(b[0]) for b in batches]
    assert lengths == sorted(lengths, reverse=True)


def test_second_identical_run_does_no_forward_pass(tiny_checkpoint, tmp_path):
    cache_dir = tmp_path / "cache"
    first = mu_eval.evaluate(str(tiny_checkpoint), [QATask()], cache_dir=cache_dir, progress=False)
    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    counter = ForwardCounter(backend.torch_model)
    second = mu_eval.evaluate(backend, [QATask()], cache_dir=cache_dir, use_cache=True, progress=False)
    counter.close()
    assert counter.calls == 0
    assert second.data["engine"]["from_cache"] == second.data["engine"]["distinct"] > 0
    assert second.tasks["support_qa"]["metrics"] == first.tasks["support_qa"]["metrics"]


def test_another_model_never_receives_the_first_models_answers(tiny_checkpoint, other_tiny_checkpoint, tmp_path):
    cache_dir = tmp_path / "cache"
    first = mu_eval.evaluate(str(tiny_checkpoint), [QATask()], cache_dir=cache_dir, progress=False)
    other = mu_eval.evaluate(str(other_tiny_checkpoint), [QATask()], cache_dir=cache_dir, progress=False)
    assert other.data["engine"]["from_cache"] == 0
    assert other.data["model"]["weights_sha256"] != first.data["model"]["weights_sha256"]
    first_nll = first.tasks["support_qa"]["items"]["nll"]
    other_nll = other.tasks["support_qa"]["items"]["nll"]
    assert first_nll != pytest.approx(other_nll, abs=1e-3)


def test_cache_round_trip_keeps_every_field(tiny_checkpoint, tmp_path):
    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    requests = [Score("The sky is", " blue.", True, vocab_stats=True), Generate("Question: Who", 4, ("\n",))]
    engine = Engine(backend, batch_size=4, progress=False)
    answers = engine.answer(requests)
    cache = AnswerCache(tmp_path, backend.identity())
    cache.put_many(answers)
    assert cache.get_many(requests) == answers
    cache.close()


def test_batch_size_one_and_sixty_four_give_the_same_report_numbers(tiny_checkpoint):
    small = mu_eval.evaluate(str(tiny_checkpoint), [QATask()], batch_size=1, use_cache=False, progress=False)
    large = mu_eval.evaluate(str(tiny_checkpoint), [QATask()], batch_size=64, use_cache=False, progress=False)
    small_items, large_items = small.tasks["support_qa"]["items"], large.tasks["support_qa"]["items"]
    assert small_items["nll"] == pytest.approx(large_items["nll"], abs=1e-5)
    assert small.tasks["support_qa"]["metrics"]["first_choice"] == large.tasks["support_qa"]["metrics"]["first_choice"]


def test_generation_is_batch_invariant_and_cut_at_stop(tiny_checkpoint):
    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    requests = [Generate("Question: " + "word " * n, 12, ("e",)) for n in range(1, 9)]
    together = backend.generate(requests)
    for request, answer in zip(requests, together):
        assert backend.generate([request])[0] == answer
        assert "e" not in answer.text


def test_auto_batch_size_backs_off_on_out_of_memory(tiny_checkpoint):
    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    original = backend.score
    seen_sizes = []

    def limited_score(batch):
        seen_sizes.append(len(batch))
        if len(batch) > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated by a capacity limit)")
        return original(batch)

    backend.score = limited_score
    engine = Engine(backend, batch_size="auto", token_budget=10_000, progress=False)
    requests = [Score("ctx", f" item {i}") for i in range(10)]
    answers = engine.run(requests)
    assert len(answers) == 10 and engine.stats.oom_backoffs >= 1
    assert max(seen_sizes[-1:]) <= 3
