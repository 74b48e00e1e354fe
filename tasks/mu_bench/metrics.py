"""MU-Bench and SalUn-protocol classifier metrics, as pure functions of per-example values.

Fixed against the upstream code (docs/mu-bench.md): the knowledge gap scores correctness (1 = correct), puts
D_f in the positive class and samples with a seed; the selection score's two components are reported, so
a reader can see that it rewards distance from random accuracy on D_f.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

KNOWLEDGE_GAP_DRAWS = 500


def accuracy(correct: Sequence[bool | int]) -> float:
    return float(np.mean(np.asarray(correct, dtype=float))) if len(correct) else math.nan


def mia_efficacy(retain_conf: Sequence[float], test_conf: Sequence[float], forget_conf: Sequence[float],
                 seed: int) -> tuple[float, int]:
    """SalUn's MIA-Efficacy: fraction of D_f that an SVC calls non-member.

    The SVC (C=3, rbf, gamma='auto') is fit on true-class confidence: a seeded sample of D_r of size
    |D_test| (label 1, members) and D_test (label 0). Returns the value and the size of the D_r sample
    (all of D_r when it is smaller than D_test).
    """
    from sklearn.svm import SVC

    retain = np.asarray(retain_conf, dtype=float)
    test = np.asarray(test_conf, dtype=float)
    forget = np.asarray(forget_conf, dtype=float)
    if not len(test) or not len(retain) or not len(forget):
        return math.nan, 0
    rng = np.random.default_rng(seed)
    if len(retain) > len(test):
        retain = retain[rng.choice(len(retain), size=len(test), replace=False)]
    features = np.concatenate([retain, test])[:, None]
    labels = np.concatenate([np.ones(len(retain)), np.zeros(len(test))])
    classifier = SVC(C=3, kernel="rbf", gamma="auto")
    classifier.fit(features, labels)
    predicted = classifier.predict(forget[:, None])
    return float(1.0 - predicted.mean()), len(retain)


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC-AUC = P(s_pos > s_neg) + P(=)/2, from average ranks (equals sklearn's roc_auc_score, much faster)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def knowledge_gap(forget_correct: Sequence[bool | int], retain_correct: Sequence[bool | int], seed: int,
                  draws: int = KNOWLEDGE_GAP_DRAWS) -> float:
    """Mean over `draws` seeded samples of ROC-AUC separating D_f (positive) from a same-size D_r sample,
    scoring correctness. 0.5 = the model is as right on D_f as on D_r; lower = D_f answered worse."""
    forget = np.asarray(forget_correct, dtype=float)
    retain = np.asarray(retain_correct, dtype=float)
    if not len(forget) or len(retain) < len(forget):
        return math.nan
    rng = np.random.default_rng(seed)
    values = [roc_auc(forget, retain[rng.choice(len(retain), size=len(forget), replace=False)]) for _ in range(draws)]
    return float(np.mean(values))


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise Jensen-Shannon divergence (natural log; = scipy's jensenshannon distance squared)."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log(a / b), 0.0)
        return terms.sum(axis=-1)

    return np.clip(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0, None)


def zrf(model_probs: Sequence[Sequence[float]], random_probs: Sequence[Sequence[float]]) -> float:
    """Zero Retrain Forgetting: 1 - mean JS divergence between the model's and a random-init model's
    softmax on D_f (in [1 - ln 2, 1]; 1 = as uninformed as a random model)."""
    if not len(model_probs):
        return math.nan
    return float(1.0 - js_divergence(np.asarray(model_probs), np.asarray(random_probs)).mean())


def harmonic_mean(a: float, b: float) -> float:
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def selection_terms(test_acc: float, orig_test_acc: float | None, forget_acc: float,
                    random_acc: float) -> tuple[float | None, float, float | None]:
    """MU-Bench's model-selection score: (1 - |Acc_Dt - Acc_Dt,orig|, |Acc_Df - 1/C|, their harmonic mean).

    The first term and the mean are None without the original model's test accuracy.
    """
    df_term = abs(forget_acc - random_acc)
    if orig_test_acc is None:
        return None, df_term, None
    dt_term = 1.0 - abs(test_acc - orig_test_acc)
    return dt_term, df_term, harmonic_mean(dt_term, df_term)


def overall(hm: float | None, gap: float | None) -> float | None:
    """MU-Bench's `unlearn_overall`: HM / 2, or (HM + knowledge gap) / 3 when D_r predictions exist."""
    if hm is None:
        return None
    if gap is None or math.isnan(gap):
        return hm / 2
    return (hm + gap) / 3
