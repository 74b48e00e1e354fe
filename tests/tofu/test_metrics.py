"""The pure TOFU aggregations against hand calculations (the golden test covers them on real logs)."""

from __future__ import annotations

import math

import pytest

from mu_eval.requests import ScoreResult
from mu_eval.tasks.tofu import metrics as M
from mu_eval.tasks.tofu import results as R


@pytest.mark.parametrize(
    ("greedy", "reference", "strict"),
    [
        ([True, True, True, True], 1.0, 1.0),  # k* = 0
        ([False, True, True, True], 0.75, 0.75),  # k* = 1
        ([True, False, True, True], 0.5, 0.5),  # a wrong token resets the suffix: k* = 2
        ([True, True, True, False], 0.25, 0.0),  # no suffix of length >= 1 is right: 1/n, or 0 with k = n
        ([False], 1.0, 0.0),  # n = 1: the reference's search stops at k = n - 1 = 0
        ([True], 1.0, 1.0),
    ],
)
def test_extraction_strength(greedy, reference, strict):
    assert M.extraction_strength(greedy) == pytest.approx(reference)
    assert M.extraction_strength(greedy, "reference") == pytest.approx(open_unlearning_es(greedy))
    assert M.extraction_strength(greedy, "strict") == pytest.approx(strict)


def open_unlearning_es(greedy: list[bool]) -> float:
    """open-unlearning's loop, restated: the first k in 0..n-1 whose suffix matches breaks, else k stays n - 1."""
    n = len(greedy)
    if n == 0:
        return 0.0
    for k in range(n):
        if all(greedy[k:]):
            break
    return 1 - k / n


def test_exact_memorization_and_empty_answers():
    assert M.exact_memorization([True, False, True, True]) == pytest.approx(0.75)
    assert math.isnan(M.exact_memorization([])) and math.isnan(M.extraction_strength([], "strict"))
    assert M.extraction_strength([]) == 0.0  # open-unlearning scores an item with no answer token 0
    with pytest.raises(ValueError, match="strict"):
        M.extraction_strength([True], "lenient")


def test_token_metrics_exclude_the_appended_eos():
    # the answer's two tokens are right, the EOS is wrong: ES and EM see only the answer
    result = ScoreResult(logprobs=(-0.1, -0.5, -3.0), greedy=(True, True, False), expected_logprob=(0, 0, 0),
                         logprob_variance=(1, 1, 1), eos_appended=True)
    es, em, min_k = R.token_metrics(result)
    assert es == 1.0 and em == 1.0
    assert min_k == pytest.approx(-0.5)  # floor(0.4 * 2) = 0 -> guarded to 1 token: the lowest, -0.5
    assert result.nll(include_eos=True) == pytest.approx(3.6 / 3)  # sequence metrics keep the EOS


def test_truth_ratio_by_hand():
    base, perturbed = [1.0], [[2.0, 4.0]]
    s = M.truth_ratio_statistics(base, perturbed)[0]
    assert s == pytest.approx(math.exp(3.0 - 1.0))
    arithmetic = M.truth_ratio_statistics(base, perturbed, "arithmetic")[0]
    assert arithmetic == pytest.approx(math.exp(-1.0) / ((math.exp(-2.0) + math.exp(-4.0)) / 2))
    assert M.forget_truth_ratio([s, 1 / s]) == pytest.approx(1 / s)
    assert M.utility_truth_ratio([s, 0.5]) == pytest.approx((1 - 1 / s + 0.0) / 2)  # max(0, 1 - 2) = 0
    with pytest.raises(ValueError, match="geometric"):
        M.truth_ratio_statistics(base, perturbed, "harmonic")  # type: ignore[arg-type]


def test_probabilities_by_hand():
    assert M.mean_probability([0.0, math.log(2)]) == pytest.approx(0.75)
    normalised = M.normalised_probabilities([math.log(2)], [[math.log(4), math.log(4)]])[0]
    assert normalised == pytest.approx(0.5 / (0.5 + 0.25 + 0.25))


def test_model_utility():
    assert M.model_utility([0.5, 0.5, 1.0]) == pytest.approx(3 / (2 + 2 + 1))
    assert M.model_utility([0.5, 0.0, 1.0]) == 0.0
    assert math.isnan(M.model_utility([0.5, None, 1.0]))
    with pytest.raises(ValueError, match="non-negative"):
        M.model_utility([0.5, -0.1])


def test_forget_quality_extremes():
    assert M.forget_quality([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    assert M.forget_quality([1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 11.0, 12.0, 13.0, 14.0]) < 0.01
    with pytest.raises(ValueError, match="at least one"):
        M.forget_quality([], [1.0])

