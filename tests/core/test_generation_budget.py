"""Generation batches follow their own token budget, sized by the key/value cache the model needs."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mu_eval.backends.hf import HFBackend
from mu_eval.backends.hf_generation import generation_token_budget, kv_cache_bytes_per_token
from mu_eval.backends.kv_cache import passed_cache, returned_cache
from mu_eval.engine import Engine
from mu_eval.requests import Generate, Score


def _cache_bytes(cache) -> int:
    """Bytes of the keys and values a returned cache holds, in each release's shape of it."""
    if hasattr(cache, "layers"):  # newer releases: one object per layer
        pairs = [(layer.keys, layer.values) for layer in cache.layers]
    elif hasattr(cache, "key_cache"):  # older: a DynamicCache with one list of keys, one of values
        pairs = list(zip(cache.key_cache, cache.value_cache))
    else:  # the legacy tuple of (keys, values) per layer
        pairs = [(keys, values) for keys, values in cache]
    assert len(pairs) == 3
    return sum(keys.nbytes + values.nbytes for keys, values in pairs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bytes_per_token_equal_what_a_real_cache_holds(dtype):
    config = LlamaConfig(
        vocab_size=97, hidden_size=48, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=64,
    )
    model = LlamaForCausalLM(config).to(dtype).eval()
    rows, length = 3, 11
    with torch.no_grad():
        cache = returned_cache(model(torch.randint(0, 97, (rows, length)), use_cache=True))
    assert kv_cache_bytes_per_token(model.config, model.dtype) * rows * length == _cache_bytes(cache)


def test_no_memory_hint_off_cuda(tiny_checkpoint):
    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    assert generation_token_budget(backend.torch_model, backend.device) is None
    engine = Engine(backend, token_budget=321, progress=False)
    assert engine.generation_budget == 321


class HintedBackend(HFBackend):
    """A real backend that reports a fixed generation budget, as a GPU backend reports its free memory."""

    hint = 90

    def generation_token_budget(self) -> int | None:
        return self.hint


def _record_batches(backend, method_name):
    batches = []
    original = getattr(backend, method_name)

    def recording(batch):
        batches.append(list(batch))
        return original(batch)

    setattr(backend, method_name, recording)
    return batches


def test_generation_and_scoring_batches_follow_their_own_budgets(tiny_checkpoint):
    backend = HintedBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    generation_batches = _record_batches(backend, "generate")
    score_batches = _record_batches(backend, "score")
    generations = [Generate("Question: " + "word " * n, 6) for n in range(1, 13)]
    scores = [Score("word " * n, " end") for n in range(1, 13)]
    engine = Engine(backend, token_budget=40, progress=False)
    answers = engine.run(generations + scores)
    assert len(answers) == 24 and engine.stats.generation_budget == 90 and engine.stats.token_budget == 40
    for batches, budget in ((generation_batches, 90), (score_batches, 40)):
        assert sum(len(batch) for batch in batches) == 12
        for batch in batches:
            longest = max(backend.request_length(r) for r in batch)
            assert len(batch) == 1 or len(batch) * longest <= budget
    # the larger generation budget really gives larger generation batches
    assert max(len(b) for b in generation_batches) > max(len(b) for b in score_batches)


def test_out_of_memory_in_generation_halves_only_the_generation_budget(tiny_checkpoint):
    backend = HintedBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    backend.hint = 10_000
    original = backend.generate

    def limited_generate(batch):
        if len(batch) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated by a capacity limit)")
        return original(batch)

    backend.generate = limited_generate
    engine = Engine(backend, token_budget=500, progress=False)
    requests = [Generate(f"Question {i}:", 3) for i in range(6)]
    answers = engine.run(requests)
    assert len(answers) == 6 and engine.stats.oom_backoffs >= 1
    assert engine.generation_budget < 10_000 and engine.token_budget == 500
    assert answers == [original([r])[0] for r in requests]


def test_a_static_cache_generates_the_same_tokens(tiny_checkpoint):
    default = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    static = HFBackend.from_pretrained(str(tiny_checkpoint), {"generation_cache": "static"}, device="cpu")
    assert static.generation_cache == "static" and default.generation_cache == "dynamic"
    caches = []
    static.torch_model.register_forward_pre_hook(
        lambda module, args, kwargs: caches.append(type(passed_cache(kwargs)).__name__), with_kwargs=True
    )
    requests = [Generate("Question: " + "word " * n, 10) for n in (1, 4, 9)]  # left padding of 0 to 8 tokens
    answers = static.generate(requests)
    assert set(caches) == {"StaticCache"}, caches
    assert answers == default.generate(requests) and all(answer.num_new_tokens > 0 for answer in answers)


def test_an_unknown_generation_cache_is_a_backend_error(tiny_checkpoint):
    from mu_eval.backend import BackendError

    with pytest.raises(BackendError, match="generation_cache"):
        HFBackend.from_pretrained(str(tiny_checkpoint), {"generation_cache": "paged"}, device="cpu")
