"""Greedy batched generation with left padding, stop strings and early stop when every row has stopped."""

from __future__ import annotations

from typing import Any

import torch

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


def pad_left(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in sequences])
    width = int(lengths.max())
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


@torch.no_grad()
def greedy_generate(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    requests: list[Generate],
    device: Any,
    cache: str = "dynamic",
) -> list[GenerateResult]:
    """Generate for one batch whose requests share `max_new_tokens` and `stop` (the engine groups them).

    `cache="static"` preallocates the key/value cache, which transformers compiles the decoding step for on
    CUDA (one compilation per batch shape); the tokens are the same as with the default growing cache.
    """
    from transformers import GenerationConfig

    stop = requests[0].stop
    max_new_tokens = requests[0].max_new_tokens
    if any(r.stop != stop or r.max_new_tokens != max_new_tokens for r in requests):
        raise ValueError("a generation batch must share max_new_tokens and stop strings")
    eos_ids = stop_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos_ids[0] if eos_ids else 0)
    input_ids, attention_mask = pad_left(prompts, pad_id)
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_ids or None,
        pad_token_id=pad_id,
        stop_strings=list(stop) or None,
        cache_implementation="static" if cache == "static" else None,
    )
    output = model.generate(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        generation_config=config,
        tokenizer=tokenizer if stop else None,
    )
    new_tokens = output[:, input_ids.shape[1] :].cpu().tolist()
    results = []
    for tokens in new_tokens:
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
        results.append(GenerateResult(text=cut_at_stop(text, stop), num_new_tokens=len(kept)))
    return results
