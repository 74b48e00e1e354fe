"""KLoM (Georgiev et al., ICLR 2025): how far unlearned models' margins are from retrained (oracle) models'.

For every evaluation point, the margins z_y - logsumexp_{j != y} z_j of N oracles (trained without D_f) and
of N unlearned models are clipped to [-100, 100], binned into 20 equal-width bins over their joint range,
and compared as KL(oracle || unlearned) with unlearned bin masses floored at 1e-5. Lower is better.

MU-Bench classification reports keep per-example margins (`items["<set>_margin"]`) and row indices, so
`klom_from_reports` takes the reports of several unlearned and retrained runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CLIP = 100.0
BINS = 20
FLOOR = 1e-5


def klom_point(oracle: Sequence[float] | np.ndarray, unlearned: Sequence[float] | np.ndarray, bins: int = BINS
               ) -> float:
    """KL(oracle histogram || unlearned histogram) of one point's margins."""
    p_values = np.clip(np.asarray(oracle, dtype=float), -CLIP, CLIP)
    q_values = np.clip(np.asarray(unlearned, dtype=float), -CLIP, CLIP)
    low = min(p_values.min(), q_values.min())
    high = max(p_values.max(), q_values.max())
    if high == low:
        return 0.0
    p = np.histogram(p_values, bins=bins, range=(low, high))[0] / len(p_values)
    q = np.histogram(q_values, bins=bins, range=(low, high))[0] / len(q_values)
    present = p > 0
    return float(np.sum(p[present] * np.log(p[present] / np.maximum(q[present], FLOOR))))


def klom_scores(oracle_margins: np.ndarray, unlearned_margins: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Per-point KLoM from arrays [models, points] of oracle and unlearned margins."""
    oracle = np.asarray(oracle_margins, dtype=float)
    unlearned = np.asarray(unlearned_margins, dtype=float)
    if oracle.ndim != 2 or unlearned.ndim != 2 or oracle.shape[1] != unlearned.shape[1]:
        shapes = f"{oracle.shape} and {unlearned.shape}"
        raise ValueError(f"margins must be [models, points] with equal points, got {shapes}")
    return np.array([klom_point(oracle[:, k], unlearned[:, k], bins) for k in range(oracle.shape[1])])


def summarise(scores: np.ndarray, percentile: float = 95.0) -> dict[str, float]:
    """Mean, median and an upper percentile of per-point KLoM (the paper's tables use a high percentile)."""
    return {
        "mean": float(np.mean(scores)),
        "median": float(np.median(scores)),
        f"p{percentile:g}": float(np.percentile(scores, percentile)),
        "n": int(len(scores)),
    }


def report_margins(report: Any, task: str, group: str) -> dict[int, float]:
    """{row index: margin} of one set ("forget", "retain", "test") of a task in a report (or its dict)."""
    data = getattr(report, "data", report)
    items = data["tasks"][task]["items"]
    return dict(zip(items[f"{group}_index"], items[f"{group}_margin"]))


def klom_from_reports(oracle_reports: Sequence[Any], unlearned_reports: Sequence[Any], task: str,
                      groups: Sequence[str] = ("forget", "retain", "test"), percentile: float = 95.0) -> dict:
    """KLoM per group over the points every report evaluated (matched by row index)."""
    if not oracle_reports or not unlearned_reports:
        raise ValueError("KLoM needs at least one oracle (retrained) and one unlearned report")
    summary: dict[str, Any] = {}
    for group in groups:
        oracle = [report_margins(r, task, group) for r in oracle_reports]
        unlearned = [report_margins(r, task, group) for r in unlearned_reports]
        common = sorted(set.intersection(*(set(m) for m in oracle + unlearned)))
        if not common:
            summary[group] = None
            continue
        scores = klom_scores(np.array([[m[i] for i in common] for m in oracle]),
                             np.array([[m[i] for i in common] for m in unlearned]))
        summary[group] = summarise(scores, percentile)
    return summary
