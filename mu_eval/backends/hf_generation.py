"""Greedy batched generation with left padding and stop strings; finished rows retire (`hf_decoding`)."""

from __future__ import annotations

from typing import Any

import torch

from mu_eval.backends.hf_decoding import retiring_greedy
from mu_eval.requests import Generate, GenerateResult, cut_at_stop

#: Share of the GPU memory free after loading that one generation batch's key/value cache may take; the
#: rest covers the prefill's activations, the last-position logits and the allocator's fragmentation.
KV_CACHE_MEMORY_SHARE = 0.5


def kv_cache_bytes_per_token(config: Any, dtype: torch.dtype) -> int | None:
    """Bytes one token adds to a full-attention key/value cache (keys and values, every layer)."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = getattr(text_config, "num_hidden_layers", None)
    heads = getattr(text_config, "num_attention_heads", None)
    hidden = getattr(text_config, "hidden_size", None)
    if not layers or not heads or not hidden:
        return None
    kv_heads = getattr(text_config, "num_key_value_heads", None) or heads
    head_dim = getattr(text_config, "head_dim", None) or hidden // heads
    element_bytes = torch.empty((), dtype=dtype).element_size() if dtype.is_floating_point else 2
    return 2 * layers * kv_heads * head_dim * element_bytes


def generation_token_budget(model: Any, device: torch.device) -> int | None:
    """Tokens (rows x (prompt + new tokens)) whose key/value cache fits in the free CUDA memory; None on
    other devices or for models whose cache size the config does not tell."""
    if device.type != "cuda":
        return None
    per_token = kv_cache_bytes_per_token(model.config, model.dtype)
    if not per_token:
        return None
    free_bytes, _ = torch.cuda.mem_get_info(device)
    return max(1, int(free_bytes * KV_CACHE_MEMORY_SHARE) // per_token)


def pad_left(sequences: list[list[int]], pad_id: int, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and mask, `width` columns (default: the longest sequence)."""
    lengths = torch.tensor([len(s) for s in sequences])
    width = max(int(lengths.max()), width or 0)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
    attention_mask = (torch.arange(width)[None, :] >= (width - lengths)[:, None]).long()
    return input_ids, attention_mask


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """EOS ids from the tokenizer and the model's generation config (chat models add turn terminators)."""
    ids: list[int] = []
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if source is None:
            continue
        for value in source if isinstance(source, list | tuple) else [source]:
            if int(value) not in ids:
                ids.append(int(value))
    return ids


#: Row counts a static-cache batch is padded up to (by repeating its last prompt), and the multiple its prompt
#: width is left-padded to: transformers compiles the decoding step once per cache shape, so a run sees a
#: few shapes instead of one per batch.
STATIC_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
STATIC_WIDTH_MULTIPLE = 64


def static_shape(rows: int, width: int) -> tuple[int, int]:
    """The (rows, prompt width) a static-cache batch runs at."""
    bucket = next((b for b in STATIC_ROW_BUCKETS if b >= rows), rows)
    return bucket, -(-width // STATIC_WIDTH_MULTIPLE) * STATIC_WIDTH_MULTIPLE


@torch.no_grad()
def greedy_generate(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    requests: list[Generate],
    device: Any,
    cache: str = "dynamic",
) -> list[GenerateResult]:
    """Greedy answers for one batch of prompts.

    With the default growing cache, rows retire as they finish (`hf_decoding.retiring_greedy`) and each
    request keeps its own `max_new_tokens` and stop strings. `cache="static"` preallocates the key/value
    cache, for which transformers compiles the decoding step on CUDA: that path runs `model.generate` on
    a batch padded to one of a few shapes (`static_shape`), and its requests must share `max_new_tokens`
    and stop strings (the engine groups them so). A model that `retires_rows` refuses (its own `generate`)
    gets `model.generate` per group of shared settings. The tokens are the same either way.
    """
    eos_ids = stop_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos_ids[0] if eos_ids else 0)
    if cache == "static":
        new_tokens = _static_generate(model, tokenizer, prompts, requests, device, eos_ids, pad_id)
    elif not retires_rows(model):
        new_tokens = [[] for _ in prompts]
        for group in _same_settings(requests):
            rows = _plain_generate(model, tokenizer, [prompts[i] for i in group], requests[group[0]], device,
                                   eos_ids, pad_id, None)
            for index, row in zip(group, rows):
                new_tokens[index] = row
    else:
        input_ids, attention_mask = pad_left(prompts, pad_id)
        new_tokens = retiring_greedy(model, tokenizer, input_ids.to(device), attention_mask.to(device),
                                     [r.max_new_tokens for r in requests], [r.stop for r in requests], eos_ids)
    results = []
    for tokens, request in zip(new_tokens, requests):
        kept = []
        for token in tokens:
            if token in eos_ids:
                break
            # a pad token distinct from EOS is skipped, not an end: MUSE's and open-unlearning's code decode
            # with skip_special_tokens and stop at EOS alone (rows that stopped at EOS or at a stop string are
            # padded from there on, and the stop string cuts the text anyway)
            if token != pad_id:
                kept.append(token)
        text = tokenizer.decode(kept, skip_special_tokens=True)
        results.append(GenerateResult(text=cut_at_stop(text, request.stop), num_new_tokens=len(kept)))
    return results


def retires_rows(model: Any) -> bool:
    """Whether `retiring_greedy` can decode for this model: a transformers decoder-only model (or a LoRA-style
    adapter on one) that keeps the library's own `generate`. A wrapper with its own `generate` (a method
    mixing two models' logits, say) or a prompt-learning adapter keeps `model.generate`."""
    from transformers import GenerationMixin

    inner = model
    if hasattr(model, "get_base_model"):
        peft_config = getattr(model, "active_peft_config", None)
        if peft_config is not None and getattr(peft_config, "is_prompt_learning", False):
            return False
        inner = model.get_base_model()
    config = getattr(inner, "config", None)
    return (isinstance(inner, GenerationMixin) and type(inner).generate is GenerationMixin.generate
            and not getattr(config, "is_encoder_decoder", False))


def _same_settings(requests: list[Generate]) -> list[list[int]]:
    """Indices of the requests grouped by (max_new_tokens, stop), in first-seen order."""
    groups: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault((request.max_new_tokens, request.stop), []).append(index)
    return list(groups.values())


def _static_generate(model: Any, tokenizer: Any, prompts: list[list[int]], requests: list[Generate], device: Any,
                     eos_ids: list[int], pad_id: int) -> list[list[int]]:
    stop = requests[0].stop
    max_new_tokens = requests[0].max_new_tokens
    if any(r.stop != stop or r.max_new_tokens != max_new_tokens for r in requests):
        raise ValueError("a static-cache generation batch must share max_new_tokens and stop strings")
    rows, width = static_shape(len(prompts), max(len(p) for p in prompts))
    padded = list(prompts) + [prompts[-1]] * (rows - len(prompts))
    return _plain_generate(model, tokenizer, padded, requests[0], device, eos_ids, pad_id, "static",
                           width)[: len(prompts)]


def _plain_generate(model: Any, tokenizer: Any, prompts: list[list[int]], request: Generate, device: Any,
                    eos_ids: list[int], pad_id: int, cache_implementation: str | None,
                    width: int | None = None) -> list[list[int]]:
    """`model.generate` on one left-padded batch sharing `request`'s limit and stop strings; new ids per row."""
    from transformers import GenerationConfig

    stop = request.stop
    input_ids, attention_mask = pad_left(prompts, pad_id, width)
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=request.max_new_tokens,
        eos_token_id=eos_ids or None,
        pad_token_id=pad_id,
        stop_strings=list(stop) or None,
        cache_implementation=cache_implementation,
    )
    output = model.generate(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        generation_config=config,
        tokenizer=tokenizer if stop else None,
    )
    return output[:, input_ids.shape[1] :].cpu().tolist()
