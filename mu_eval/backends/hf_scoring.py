"""One forward pass per batch of scored texts; per-token statistics reduced on the device.

Full logits never leave the device: only four numbers per continuation token do.
"""

from __future__ import annotations

from typing import Any

import torch

from mu_eval.backends.hf_encoding import EncodedScore
from mu_eval.requests import ScoreResult

#: Rows of the vocabulary-wide log-softmax computed at once (bounds the float32 temporary).
STATS_CHUNK = 2048


def pad_right(sequences: list[tuple[int, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and an attention mask built from lengths (never from `token != pad`)."""
    lengths = torch.tensor([len(s) for s in sequences])
    width = int(lengths.max())
    input_ids = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    return input_ids, attention_mask


def token_statistics(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """For rows of logits [N, V] and targets [N]: log p(target), argmax==target, E[log p], Var[log p].

    Computed in float32 whatever the model's dtype; returns a [N, 4] float32 tensor on the same device.
    """
    out = []
    for begin in range(0, logits.shape[0], STATS_CHUNK):
        chunk = logits[begin : begin + STATS_CHUNK].float()
        target = targets[begin : begin + STATS_CHUNK]
        logp = torch.log_softmax(chunk, dim=-1)
        probs = logp.exp()
        expected = (probs * logp).sum(-1)
        # centred, not E[x^2] - E[x]^2: near-uniform rows would lose the variance to cancellation
        variance = (probs * (logp - expected[:, None]).square()).sum(-1)
        target_logp = logp.gather(-1, target[:, None]).squeeze(-1)
        greedy = (chunk.argmax(-1) == target).float()
        out.append(torch.stack([target_logp, greedy, expected, variance], dim=-1))
    return torch.cat(out, dim=0)


def _logit_postprocessing(config: Any) -> bool:
    """Models whose logits are more than `lm_head(hidden)` (soft-capping, scaling) take the full path."""
    return bool(getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None))


def selected_logits(model: Any, inputs: dict[str, torch.Tensor], rows: torch.Tensor, positions: torch.Tensor):
    """Logits at (row, position) pairs only: the output head runs on the selected hidden states.

    Scoring needs the distribution at continuation positions alone; skipping the head elsewhere saves its
    FLOPs and the [batch, length, vocabulary] tensor. Architectures where that is not exact fall back to
    the full forward pass.
    """
    unwrapped = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft injects in place
    head = unwrapped.get_output_embeddings()
    base = getattr(unwrapped, getattr(unwrapped, "base_model_prefix", ""), None)
    base_has_head = base is None or base is unwrapped or getattr(base, "get_output_embeddings", lambda: None)()
    if head is None or base_has_head or _logit_postprocessing(unwrapped.config):
        return model(**inputs).logits[rows, positions]
    assert base is not None  # base_has_head is true otherwise
    hidden = base(**inputs).last_hidden_state
    return head(hidden[rows, positions])


@torch.no_grad()
def score_batch(model: Any, encoded: list[EncodedScore], device: Any) -> list[ScoreResult]:
    rows: list[int] = []
    positions: list[int] = []
    targets: list[int] = []
    for row, item in enumerate(encoded):
        count = len(item.input_ids) - item.start
        rows.extend([row] * count)
        positions.extend(range(item.start - 1, len(item.input_ids) - 1))
        targets.extend(item.input_ids[item.start :])
    if not rows:
        return [_result([], item.eos_appended) for item in encoded]
    # the last token is only a target: the model never sees it (a text of n tokens needs n - 1 positions)
    input_ids, attention_mask = pad_right([e.input_ids[: max(len(e.input_ids) - 1, 1)] for e in encoded])
    position_ids = torch.arange(input_ids.shape[1])[None, :].expand_as(input_ids)
    inputs = {
        "input_ids": input_ids.to(device),
        "attention_mask": attention_mask.to(device),
        "position_ids": position_ids.to(device),
    }
    logits = selected_logits(
        model, inputs, torch.tensor(rows, device=device), torch.tensor(positions, device=device)
    )
    stats = token_statistics(logits, torch.tensor(targets, device=logits.device)).cpu().tolist()
    results, cursor = [], 0
    for item in encoded:
        count = len(item.input_ids) - item.start
        results.append(_result(stats[cursor : cursor + count], item.eos_appended))
        cursor += count
    return results


def _result(stats: list[list[float]], eos_appended: bool) -> ScoreResult:
    return ScoreResult(
        logprobs=tuple(s[0] for s in stats),
        greedy=tuple(s[1] > 0.5 for s in stats),
        expected_logprob=tuple(s[2] for s in stats),
        logprob_variance=tuple(s[3] for s in stats),
        eos_appended=eos_appended,
    )
