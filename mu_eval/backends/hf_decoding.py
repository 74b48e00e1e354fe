"""Greedy decoding that retires finished rows: a row that has stopped stops costing compute and cache.

`model.generate` keeps every row of a batch to the end, feeding padding to the rows that are done, so a batch
costs as many steps of its full width as its longest answer. Here each step runs only the rows still
generating: when a row ends (EOS, its own `max_new_tokens`, or one of its own stop strings), it leaves the
batch and its key/value cache rows are dropped. The tokens are those of `generate` with greedy search: the
same prefill with left padding, the same position ids (count of attended tokens - 1) and the argmax of the
float32 logits of the last position.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from mu_eval.backends.kv_cache import cache_keyword, returned_cache


def _forward_parameters(model: Any) -> set[str]:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft passes kwargs on
    return set(inspect.signature(inner.forward).parameters)


def _select_rows(cache: Any, keep: torch.Tensor) -> bool:
    """Keep only the `keep` rows of a returned cache in place; False for a cache that cannot (then rows stay)."""
    for method in ("batch_select_indices", "reorder_cache"):
        select = getattr(cache, method, None)
        if callable(select):
            select(keep)
            return True
    return False


def stop_window(stop: Sequence[str]) -> int:
    """Tokens decoded at the end of a row to find a stop string that its newest token completes: a stop of c
    characters spans at most 4c byte-level tokens, and a margin keeps the start's partial characters away."""
    return 4 * max((len(s) for s in stop if s), default=0) + 4


@torch.no_grad()
def retiring_greedy(
    model: Any,
    tokenizer: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: Sequence[int],
    stops: Sequence[Sequence[str]],
    eos_ids: Sequence[int],
) -> list[list[int]]:
    """New token ids per row of a left-padded batch (the ending EOS not included), each row with its own limit
    and stop strings; a row is cut after the token that completes one of its stop strings."""
    rows = input_ids.shape[0]
    generated: list[list[int]] = [[] for _ in range(rows)]
    active = [row for row in range(rows) if max_new_tokens[row] > 0]
    if not active:
        return generated
    parameters = _forward_parameters(model)
    keyword = cache_keyword(model)
    extra = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
    ending = {int(token) for token in eos_ids}
    windows = [stop_window(stop) for stop in stops]
    index = torch.tensor(active, device=input_ids.device)
    mask = attention_mask[index]
    step_ids = input_ids[index]
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
    # the row each batch slot decodes; None for a finished row that a cache unable to drop rows still carries
    slots: list[int | None] = list(active)
    cache = None
    while True:
        inputs: dict[str, Any] = {"input_ids": step_ids, "attention_mask": mask, "position_ids": positions,
                                  "use_cache": True, **extra}
        if cache is not None:
            inputs[keyword] = cache
        output = model(**inputs)
        cache = returned_cache(output)
        next_tokens = output.logits[:, -1, :].float().argmax(-1)
        going = _advance(tokenizer, slots, next_tokens.tolist(), generated, max_new_tokens, stops, windows, ending)
        if not going:
            return generated
        if len(going) < len(slots):
            kept = torch.tensor(going, device=next_tokens.device)
            if cache is not None and _select_rows(cache, kept):
                mask, next_tokens = mask[kept], next_tokens[kept]
                slots = [slots[slot] for slot in going]
            else:
                live = set(going)
                slots = [row if slot in live else None for slot, row in enumerate(slots)]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        step_ids = next_tokens[:, None]
        positions = mask.long().sum(-1, keepdim=True) - 1


def _advance(tokenizer: Any, slots: list[int | None], chosen: list[int], generated: list[list[int]],
             max_new_tokens: Sequence[int], stops: Sequence[Sequence[str]], windows: list[int],
             ending: set[int]) -> list[int]:
    """Append each live slot's token to its row; the slots whose rows go on (not ended by EOS, limit or stop)."""
    going: list[int] = []
    to_check: list[int] = []
    for slot, row in enumerate(slots):
        if row is None:
            continue
        token = int(chosen[slot])
        if token in ending:
            continue
        generated[row].append(token)
        if len(generated[row]) >= max_new_tokens[row]:
            continue
        going.append(slot)
        if any(stops[row]):
            to_check.append(slot)
    if to_check:
        rows = [slots[slot] for slot in to_check]
        tails = tokenizer.batch_decode([generated[row][-windows[row]:] for row in rows if row is not None],
                                       skip_special_tokens=True)
        stopped = {slot for slot, row, tail in zip(to_check, rows, tails)
                   if row is not None and any(s and s in tail for s in stops[row])}
        going = [slot for slot in going if slot not in stopped]
    return going
