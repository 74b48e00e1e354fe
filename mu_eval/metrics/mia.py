"""Membership-inference scores, oriented so that higher = more likely a member (docs/attacks.md)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np

from mu_eval.requests import ScoreResult

MIN_VARIANCE = 1e-6


def _token_count(k: float, total: int, guard: bool) -> int:
    """m = floor(k*T) for the decimal k meant (0.7): a float product within rounding of an integer is that integer.

    Plain float multiplication loses a token at some lengths (0.7 * 90 = 62.99999999999999 -> 62, not 63).
    """
    product = k * total
    m = math.floor(product)
    if math.isclose(product, m + 1, rel_tol=1e-9):
        m += 1
    return max(1, m) if guard else m


def loss_score(result: ScoreResult, include_eos: bool = False) -> float:
    """LOSS: s = -NLL."""
    return -result.nll(include_eos)


def zlib_score(result: ScoreResult, text: str, include_eos: bool = False) -> float:
    """Zlib: s = -NLL / len(zlib.compress(text))."""
    return -result.nll(include_eos) / len(zlib.compress(text.encode("utf-8")))


def min_k_score(result: ScoreResult, k: float = 0.2, include_eos: bool = False, guard: bool = True) -> float:
    """Min-K%: mean of the m = floor(k*T) smallest token log-probs (m >= 1 unless `guard` is off)."""
    # float64, so a fresh float32 answer and the same answer read back from the cache give the same score
    values = np.sort(np.asarray(result.logprobs[result.token_slice(include_eos)], dtype=np.float64))
    m = _token_count(k, values.size, guard)
    if m == 0 or values.size == 0:
        return math.nan
    return float(values[:m].mean())


def min_k_plus_plus_score(result: ScoreResult, k: float = 0.2, include_eos: bool = False, guard: bool = True) -> float:
    """Min-K%++: z_t = (l_t - mu_t) / sigma_t with sigma_t^2 clamped at 1e-6; mean of the m smallest z_t."""
    window = result.token_slice(include_eos)
    logprobs = np.asarray(result.logprobs[window], dtype=np.float64)
    if logprobs.size == 0:
        return math.nan
    mean = np.asarray(result.expected_logprob[window], dtype=np.float64)
    variance = np.maximum(np.asarray(result.logprob_variance[window], dtype=np.float64), MIN_VARIANCE)
    z = np.sort((logprobs - mean) / np.sqrt(variance))
    m = _token_count(k, z.size, guard)
    if m == 0:
        return math.nan
    return float(z[:m].mean())


def reference_score(result: ScoreResult, reference: ScoreResult, include_eos: bool = False) -> float:
    """Reference attack: s = -(NLL_model - NLL_reference)."""
    return -(result.nll(include_eos) - reference.nll(include_eos))


def lowercase_score(result: ScoreResult, lowercase: ScoreResult, include_eos: bool = False) -> float:
    """MUSE's PPL/lower: s = -NLL(x) / NLL(lower(x))."""
    return -result.nll(include_eos) / lowercase.nll(include_eos)


#: Scores computed from one Score answer (and its text): the order the MIA attack reports them in.
SINGLE_PASS_SCORES = ("loss", "zlib", "min_k", "min_k_plus_plus")


def per_sample_scores(
    results: Sequence[ScoreResult], texts: Sequence[str], k: float = 0.2, include_eos: bool = False
) -> dict[str, list[float]]:
    """LOSS, Zlib, Min-K% and Min-K%++ per sample, all member-oriented, from Score answers alone."""
    if len(results) != len(texts):
        raise ValueError(f"{len(results)} results but {len(texts)} texts")
    return {
        "loss": [loss_score(r, include_eos) for r in results],
        "zlib": [zlib_score(r, t, include_eos) for r, t in zip(results, texts)],
        "min_k": [min_k_score(r, k, include_eos) for r in results],
        "min_k_plus_plus": [min_k_plus_plus_score(r, k, include_eos) for r in results],
    }


def _clean(members: Sequence[float] | np.ndarray, nonmembers: Sequence[float] | np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, int]:
    m = np.asarray(members, dtype=np.float64)
    h = np.asarray(nonmembers, dtype=np.float64)
    dropped = int((~np.isfinite(m)).sum() + (~np.isfinite(h)).sum())
    return m[np.isfinite(m)], h[np.isfinite(h)], dropped


def auc(members: Sequence[float] | np.ndarray, nonmembers: Sequence[float] | np.ndarray) -> float:
    """ROC AUC with members (forget set) as the positive class: P(s_member > s_nonmember) + ties/2."""
    from sklearn.metrics import roc_auc_score

    m, h, _ = _clean(members, nonmembers)
    if m.size == 0 or h.size == 0:
        return math.nan
    labels = np.concatenate([np.ones(m.size), np.zeros(h.size)])
    return float(roc_auc_score(labels, np.concatenate([m, h])))


def mia_summary(members: Sequence[float], nonmembers: Sequence[float]) -> dict[str, float | int]:
    """AUC, TPR at 1% and 5% FPR, and best balanced accuracy, members positive; NaN scores are counted."""
    from sklearn.metrics import roc_curve

    m, h, dropped = _clean(members, nonmembers)
    summary: dict[str, float | int] = {"auc": auc(m, h), "n_members": int(m.size), "n_nonmembers": int(h.size),
                                       "n_dropped_nan": dropped}
    if m.size == 0 or h.size == 0:
        summary.update({"tpr_at_1_fpr": math.nan, "tpr_at_5_fpr": math.nan, "balanced_accuracy": math.nan})
        return summary
    labels = np.concatenate([np.ones(m.size), np.zeros(h.size)])
    fpr, tpr, _ = roc_curve(labels, np.concatenate([m, h]))
    summary["tpr_at_1_fpr"] = float(tpr[fpr <= 0.01].max()) if (fpr <= 0.01).any() else 0.0
    summary["tpr_at_5_fpr"] = float(tpr[fpr <= 0.05].max()) if (fpr <= 0.05).any() else 0.0
    summary["balanced_accuracy"] = float(np.max(1 - (fpr + (1 - tpr)) / 2))
    return summary


def auc_from_muse(auc_muse: float) -> float:
    """MUSE labels forget 0 and feeds -(loss-like score): its AUC is 1 - ours."""
    return 1.0 - auc_muse


def auc_to_muse(value: float) -> float:
    return 1.0 - value


def privleak(auc_unlearned: float, auc_reference: float) -> float | None:
    """PrivLeak = (AUC_ref - AUC_unl) / (1 - AUC_ref) x 100, in this project's orientation; None if undefined."""
    if not (math.isfinite(auc_unlearned) and math.isfinite(auc_reference)) or 1.0 - auc_reference < 1e-10:
        return None
    return (auc_reference - auc_unlearned) / (1.0 - auc_reference) * 100.0
