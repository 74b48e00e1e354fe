"""One forward pass per batch of scored texts; per-token statistics reduced on the device, chunk by chunk.

Full logits never leave the device, nor exist at once: the output head and the float32 statistics run on
`chunk_rows` positions at a time, and only four numbers per continuation token come back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from mu_eval.backends.hf_encoding import EncodedScore
from mu_eval.requests import ScoreResult

#: Elements (positions x vocabulary) of logits computed and reduced at once: the output head and the float32
#: statistics run on this many at a time, so a 32k-token batch never holds its [tokens, vocabulary] logits
#: (8 GB at a 128k vocabulary) but about 256 MB of float32 at a time.
CHUNK_ELEMENTS = 1 << 26


def chunk_rows(vocabulary: int) -> int:
    """Positions per chunk for a vocabulary of this size (at least one)."""
    return max(1, CHUNK_ELEMENTS // max(vocabulary, 1))


def pad_right(sequences: list[tuple[int, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and an attention mask built from lengths (never from `token != pad`)."""
    lengths = torch.tensor([len(s) for s in sequences])
    width = int(lengths.max())
    input_ids = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    return input_ids, attention_mask


def token_statistics(logits: torch.Tensor, targets: torch.Tensor, vocab_stats: torch.Tensor) -> torch.Tensor:
    """For rows of logits [N, V], targets [N] and flags [N]: log p(target), argmax==target, E[log p] and
    Var[log p] (NaN in rows whose flag is off: they cost several more passes over the vocabulary).

    Computed in float32 whatever the model's dtype, with torch's log-softmax (the values of every earlier
    release, to the bit); returns a [N, 4] float32 tensor on the same device.
    Callers pass at most `chunk_rows` rows at once.
    """
    chunk = logits.float()
    logp = torch.log_softmax(chunk, dim=-1)
    target_logp = logp.gather(-1, targets[:, None]).squeeze(-1)
    greedy = (chunk.argmax(-1) == targets).float()
    expected = torch.full_like(target_logp, float("nan"))
    variance = torch.full_like(target_logp, float("nan"))
    wanted = vocab_stats.nonzero().squeeze(-1)
    if wanted.numel():
        chosen = logp[wanted] if wanted.numel() < logp.shape[0] else logp
        probs = chosen.exp()
        mean = (probs * chosen).sum(-1)
        expected[wanted] = mean
        # centred, not E[x^2] - E[x]^2: near-uniform rows would lose the variance to cancellation
        variance[wanted] = (probs * (chosen - mean[:, None]).square()).sum(-1)
    return torch.stack([target_logp, greedy, expected, variance], dim=-1)


def _logit_postprocessing(config: Any) -> bool:
    """Models whose logits are more than `lm_head(hidden)` (soft-capping, scaling) take the full path."""
    return bool(getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None))


def _vocabulary(head: Any, config: Any) -> int:
    weight = getattr(head, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.dim() == 2:
        return int(weight.shape[0])
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(getattr(text_config, "vocab_size", 0) or 1)


def selected_logit_chunks(
    model: Any, inputs: dict[str, torch.Tensor], rows: torch.Tensor, positions: torch.Tensor
) -> Iterator[tuple[int, torch.Tensor]]:
    """Logits at (row, position) pairs only, as (first index, [chunk, vocabulary]) pieces of `chunk_rows`.

    Scoring needs the distribution at continuation positions alone: the output head runs on the selected
    hidden states, a chunk at a time, which saves its FLOPs elsewhere and never builds the whole
    [positions, vocabulary] tensor. Architectures where that is not exact (no separable head, soft-capped
    or scaled logits) take the full forward pass, whose selected logits are then cut the same way.
    """
    unwrapped = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft injects in place
    head = unwrapped.get_output_embeddings()
    base = getattr(unwrapped, getattr(unwrapped, "base_model_prefix", ""), None)
    base_has_head = base is None or base is unwrapped or getattr(base, "get_output_embeddings", lambda: None)()
    if head is None or base_has_head or _logit_postprocessing(unwrapped.config):
        logits = model(**inputs).logits[rows, positions]
        step = chunk_rows(logits.shape[-1])
        for begin in range(0, logits.shape[0], step):
            yield begin, logits[begin : begin + step]
        return
    assert base is not None  # base_has_head is true otherwise
    hidden = base(**inputs).last_hidden_state[rows, positions]
    step = chunk_rows(_vocabulary(head, unwrapped.config))
    for begin in range(0, hidden.shape[0], step):
        yield begin, head(hidden[begin : begin + step])


def selected_logits(model: Any, inputs: dict[str, torch.Tensor], rows: torch.Tensor, positions: torch.Tensor):
    """All the logits at (row, position) pairs in one tensor (a few rows, e.g. the next token of questions)."""
    return torch.cat([piece for _, piece in selected_logit_chunks(model, inputs, rows, positions)], dim=0)


@torch.no_grad()
def score_batch(
    model: Any, encoded: list[EncodedScore], device: Any, vocab_stats: Sequence[bool]
) -> list[ScoreResult]:
    """Answers for encoded texts in one forward pass; `vocab_stats[i]`: whether text i needs the mean and
    variance of log p (`Score.vocab_stats`)."""
    if len(vocab_stats) != len(encoded):
        raise ValueError(f"{len(vocab_stats)} vocab_stats flags for {len(encoded)} texts")
    rows: list[int] = []
    positions: list[int] = []
    targets: list[int] = []
    wanted: list[bool] = []
    for row, (item, need) in enumerate(zip(encoded, vocab_stats)):
        count = len(item.input_ids) - item.start
        rows.extend([row] * count)
        positions.extend(range(item.start - 1, len(item.input_ids) - 1))
        targets.extend(item.input_ids[item.start :])
        wanted.extend([need] * count)
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
    target_ids = torch.tensor(targets, device=device)
    flags = torch.tensor(wanted, device=device)
    pieces = []
    for begin, logits in selected_logit_chunks(
        model, inputs, torch.tensor(rows, device=device), torch.tensor(positions, device=device)
    ):
        end = begin + logits.shape[0]
        here = logits.device
        pieces.append(token_statistics(logits, target_ids[begin:end].to(here), flags[begin:end].to(here)))
    stats = torch.cat(pieces, dim=0).cpu().tolist()
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
