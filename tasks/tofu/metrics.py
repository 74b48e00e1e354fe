"""Pure TOFU aggregations: per-item numbers in, reported values out (docs/tofu.md).

The task feeds these functions the NLLs and greedy flags of its `Score` answers; the golden test feeds
them the per-item losses of the published Llama-2 logs. Keeping them free of requests and models is
what lets one regression test pin the numbers of both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

PerturbationMean = Literal["geometric", "arithmetic"]
KsMethod = Literal["auto", "exact", "asymp"]
EsMode = Literal["reference", "strict"]


def _array(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def probabilities(nlls: Sequence[float]) -> np.ndarray:
    """Per-item length-normalised probability p̄ = exp(-NLL)."""
    return np.exp(-_array(nlls))


def mean_probability(nlls: Sequence[float]) -> float:
    """TOFU Prob for the retain and forget sets: mean_i exp(-NLL(answer_i))."""
    return float(probabilities(nlls).mean()) if len(nlls) else math.nan


def normalised_probabilities(true_nlls: Sequence[float], perturbed_nlls: Sequence[Sequence[float]]) -> np.ndarray:
    """Per-item p_true / (p_true + sum_j p_pert,j): the real-authors / world-facts Prob."""
    true = probabilities(true_nlls)
    perturbed = np.array([np.exp(-_array(row)).sum() for row in perturbed_nlls])
    return true / (true + perturbed)


def truth_ratio_statistics(
    base_nlls: Sequence[float], perturbed_nlls: Sequence[Sequence[float]], mean: PerturbationMean = "geometric"
) -> np.ndarray:
    """Per-item s_i = p̄(base_i) / mean_j p̄(pert_ij).

    "geometric" (mu-eval, and the code of both TOFU pipelines) is s = exp(mean_j NLL(pert_j) - NLL(base));
    "arithmetic" (the paper's notation) averages the perturbed probabilities instead and is offered only
    so that the difference can be shown (it moves Llama-2 MU from 0.6227 to 0.5859).
    """
    base = _array(base_nlls)
    if mean == "geometric":
        return np.exp(np.array([_array(row).mean() for row in perturbed_nlls]) - base)
    if mean == "arithmetic":
        return np.exp(-base) / np.array([np.exp(-_array(row)).mean() for row in perturbed_nlls])
    raise ValueError(f"unknown perturbation mean {mean!r}; expected 'geometric' or 'arithmetic'")


def forget_truth_ratio(s: Sequence[float]) -> float:
    """Forget set: mean_i min(s_i, 1/s_i), 1 when the model cannot tell true from false answers."""
    values = _array(s)
    return float(np.minimum(values, 1.0 / values).mean()) if values.size else math.nan


def utility_truth_ratio(s: Sequence[float]) -> float:
    """Retain / real authors / world facts: mean_i max(0, 1 - 1/s_i), higher when the truth is preferred."""
    values = _array(s)
    return float(np.maximum(0.0, 1.0 - 1.0 / values).mean()) if values.size else math.nan


def prob_mean_truth_ratio(s: Sequence[float]) -> float:
    """open-unlearning's `prob_mean` aggregator: mean_i p̄(base)/(p̄(base) + geo-mean p̄(pert)) = s/(1+s).

    A different metric from the truth ratio, kept for comparison with that codebase.
    """
    values = _array(s)
    return float((values / (1.0 + values)).mean()) if values.size else math.nan


def model_utility(values: Mapping[str, float | None] | Sequence[float | None]) -> float:
    """Harmonic mean (scipy.stats.hmean) of the nine utility numbers; NaN when one is missing.

    A zero component makes MU zero, as the harmonic mean should (a model that lost one ability is useless).
    """
    from scipy.stats import hmean

    numbers = list(values.values()) if isinstance(values, Mapping) else list(values)
    if not numbers or any(v is None or not math.isfinite(v) for v in numbers):
        return math.nan
    array = _array(numbers)
    if (array < 0).any():
        raise ValueError(f"model utility needs non-negative components, got {numbers}")
    if (array == 0).any():
        return 0.0
    return float(hmean(array))


def ks_test(s_model: Sequence[float], s_reference: Sequence[float], method: KsMethod = "auto") -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov test: (statistic D, p-value)."""
    from scipy.stats import ks_2samp

    model, reference = _array(s_model), _array(s_reference)
    if model.size == 0 or reference.size == 0:
        raise ValueError("forget quality needs at least one item in each sample")
    result = ks_2samp(model, reference, method=method)
    return float(result.statistic), float(result.pvalue)


def forget_quality(s_model: Sequence[float], s_reference: Sequence[float], method: KsMethod = "auto") -> float:
    """TOFU forget quality: the KS p-value of the model's forget-set s against the retain model's.

    Invariant under s -> 1/s (a monotone map), so open-unlearning's TR = 1/s gives the same number.
    """
    return ks_test(s_model, s_reference, method)[1]


def exact_memorization(greedy: Sequence[bool]) -> float:
    """Fraction of answer tokens (EOS excluded) whose teacher-forced argmax is the label."""
    return float(np.mean(np.asarray(greedy, dtype=bool))) if len(greedy) else math.nan


def extraction_strength(greedy: Sequence[bool], mode: EsMode = "reference") -> float:
    """ES = 1 - k*/n: k* is the smallest k with the argmax right at every position >= k.

    "reference" (open-unlearning) searches k in 0..n-1, so an item whose last token is wrong gets 1/n, and
    an item with no scored token gets 0. "strict" also lets k = n (the empty suffix) qualify, so ES is 0
    when the last token is wrong, and NaN without a token.
    """
    n = len(greedy)
    if n == 0:
        return 0.0 if mode == "reference" else math.nan
    if mode not in ("reference", "strict"):
        raise ValueError(f"unknown extraction strength mode {mode!r}; expected 'reference' or 'strict'")
    k = n
    while k > 0 and greedy[k - 1]:
        k -= 1
    if mode == "reference":
        k = min(k, n - 1)
    return 1.0 - k / n


def mean(values: Sequence[float]) -> float:
    """Plain mean of finite per-item values (NaN when there are none)."""
    array = _array(values)
    array = array[np.isfinite(array)]
    return float(array.mean()) if array.size else math.nan
