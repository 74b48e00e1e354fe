"""Greedy generation with finished rows retiring: the same text as plain `generate` on each prompt alone."""

from __future__ import annotations

import pytest
import torch
from transformers import GenerationConfig

from mu_eval.backends.hf import HFBackend
from mu_eval.backends.hf_encoding import encode_prompt
from mu_eval.backends.hf_generation import STATIC_WIDTH_MULTIPLE, static_shape, stop_token_ids
from mu_eval.backends.kv_cache import passed_cache
from mu_eval.engine import Engine
from mu_eval.requests import Generate, cut_at_stop


@pytest.fixture(scope="module")
def backend(tiny_checkpoint):
    return HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")


def plain_generate(backend, request: Generate) -> tuple[str, int]:
    """`model.generate` on the prompt alone (no padding), the stop strings given to it, text cut at them."""
    tokenizer, model = backend.tokenizer, backend.torch_model
    eos = stop_token_ids(model, tokenizer)
    ids = encode_prompt(tokenizer, request.prompt, None)
    config = GenerationConfig(do_sample=False, max_new_tokens=request.max_new_tokens, eos_token_id=eos,
                              pad_token_id=tokenizer.pad_token_id, stop_strings=list(request.stop) or None)
    with torch.no_grad():
        output = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                generation_config=config, tokenizer=tokenizer if request.stop else None)
    tokens = output[0, len(ids):].tolist()
    kept = tokens[: next((i for i, t in enumerate(tokens) if t in eos), len(tokens))]
    return cut_at_stop(tokenizer.decode(kept, skip_special_tokens=True), request.stop), len(kept)


def mixed_requests() -> list[Generate]:
    words = "the quick brown fox jumps over lazy dog Paris capital France honey bees".split()
    requests = []
    for index in range(12):
        prompt = "Question: " + " ".join(words[(index * 5 + k) % len(words)] for k in range(1 + index * 3 % 17))
        stop = (("e",), (), ("\n", " the"), ("o",))[index % 4]
        requests.append(Generate(prompt, (3, 9, 16)[index % 3], stop))
    return requests


def generate_counting_rows(backend, requests, model=None):
    """The backend's answers, and the number of rows of each forward pass of `model` (default: the backend's)
    while it produced them."""
    sizes: list[int] = []
    handle = (backend.torch_model if model is None else model).register_forward_pre_hook(
        lambda module, args, kwargs: sizes.append(int(kwargs["input_ids"].shape[0])), with_kwargs=True)
    try:
        return backend.generate(requests), sizes
    finally:
        handle.remove()


def test_one_mixed_batch_gives_each_prompt_its_plain_generate_text(backend):
    requests = mixed_requests()
    answers, sizes = generate_counting_rows(backend, requests)
    expected = [plain_generate(backend, r) for r in requests]
    assert [a.text for a in answers] == [text for text, _ in expected]
    for request, answer, (_, count) in zip(requests, answers, expected):
        if not request.stop:
            assert answer.num_new_tokens == count
        assert answer.num_new_tokens <= request.max_new_tokens
    # finished rows left the batch: the steps got narrower, and no step ran past the longest limit
    assert sizes[0] == len(requests) and sizes[-1] < len(requests) and sizes == sorted(sizes, reverse=True)
    assert len(sizes) <= max(r.max_new_tokens for r in requests)
    assert any(answer.num_new_tokens < request.max_new_tokens for request, answer in zip(requests, answers))


def test_rows_ending_at_eos_retire_and_match_generate(tiny_checkpoint):
    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    requests = [Generate("Question: " + "word " * n, 12) for n in range(1, 9)]
    first = backend.generate(requests)
    # make a token the model does produce an end token (as a chat model's turn terminator would be)
    produced = backend.tokenizer.encode(first[3].text, add_special_tokens=False)
    assert produced
    model_config = backend.torch_model.generation_config
    model_config.eos_token_id = [backend.tokenizer.eos_token_id, produced[min(2, len(produced) - 1)]]
    answers, sizes = generate_counting_rows(backend, requests)
    expected = [plain_generate(backend, r) for r in requests]
    assert [(a.text, a.num_new_tokens) for a in answers] == expected
    assert any(count < 12 for _, count in expected) and sizes[-1] < len(requests)


def test_engine_batches_of_any_width_give_the_same_answers(backend):
    requests = mixed_requests()
    wide = Engine(backend, progress=False).run(requests)
    narrow = Engine(backend, batch_size=1, progress=False).run(requests)
    assert wide == narrow


def test_static_cache_runs_a_few_padded_shapes_with_the_same_tokens(tiny_checkpoint, backend):
    static = HFBackend.from_pretrained(str(tiny_checkpoint), {"generation_cache": "static"}, device="cpu")
    shapes: set[tuple[int, int]] = set()

    def record(module, args, kwargs):
        cache = passed_cache(kwargs)
        if cache is not None and hasattr(cache, "layers") and getattr(cache.layers[0], "keys", None) is not None:
            shapes.add((int(cache.layers[0].keys.shape[0]), int(cache.layers[0].keys.shape[2])))
        elif cache is not None and hasattr(cache, "key_cache"):
            shapes.add((int(cache.key_cache[0].shape[0]), int(cache.key_cache[0].shape[2])))

    static.torch_model.register_forward_pre_hook(record, with_kwargs=True)
    batches = [[Generate("Question: " + "word " * n, 6) for n in range(start, start + rows)]
               for start, rows in ((1, 3), (2, 4), (5, 2), (1, 1))]
    for batch in batches:
        assert static.generate(batch) == backend.generate(batch)
    assert static_shape(3, 7) == (4, STATIC_WIDTH_MULTIPLE) and static_shape(5, 65) == (8, 2 * STATIC_WIDTH_MULTIPLE)
    # batches of 3, 4, 2 and 1 rows with prompts of 3 to 11 tokens: rows padded to 4, 4, 2, 1 and every prompt
    # to one width, so three cache shapes of one length (the width plus the new tokens), not four
    assert {rows for rows, _ in shapes} == {4, 2, 1} and len({length for _, length in shapes}) == 1, shapes
    assert STATIC_WIDTH_MULTIPLE <= next(iter(shapes))[1] <= STATIC_WIDTH_MULTIPLE + 6


def test_a_lora_adapter_retires_rows_and_matches_generate(tiny_checkpoint, tmp_path):
    from peft import LoraConfig, get_peft_model

    from mu_eval.backends.hf_generation import retires_rows

    plain = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    adapted = get_peft_model(plain.torch_model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                           init_lora_weights=False))
    adapted.save_pretrained(tmp_path / "adapter")
    backend = HFBackend.from_pretrained(str(tiny_checkpoint), {"peft": str(tmp_path / "adapter")}, "cpu")
    assert hasattr(backend.torch_model, "get_base_model") and retires_rows(backend.torch_model)
    requests = mixed_requests()[:6]
    answers, sizes = generate_counting_rows(backend, requests, backend.torch_model.get_base_model())
    assert [a.text for a in answers] == [plain_generate(backend, r)[0] for r in requests]
    assert sizes[0] == len(requests) and sizes[-1] < len(requests)
    without = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")  # get_peft_model changed `plain`
    assert [a.text for a in answers] != [a.text for a in without.generate(requests)]  # the adapter counts
