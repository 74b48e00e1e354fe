"""MU-Bench metrics against hand calculations and second implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from mu_eval.tasks.mu_bench import metrics
from mu_eval.tasks.mu_bench.klom import klom_point, klom_scores, summarise


def test_mia_efficacy_counts_forget_rows_that_look_like_test_rows():
    retain = [0.99, 0.98, 0.97] * 20  # members: confident
    test = [0.30, 0.25, 0.35, 0.20] * 5  # non-members: unsure
    forget = [0.99] * 6 + [0.28] * 4  # 6 still look like members, 4 like test data
    value, shadow = metrics.mia_efficacy(retain, test, forget, seed=0)
    assert shadow == len(test)  # the D_r sample has the size of D_test
    assert value == pytest.approx(0.4)


def test_mia_efficacy_uses_all_of_retain_when_smaller_than_test():
    value, shadow = metrics.mia_efficacy([0.9, 0.95], [0.1, 0.2, 0.15], [0.12], seed=3)
    assert shadow == 2 and value == 1.0


def test_knowledge_gap_hand_calculation_when_retain_is_all_correct():
    # every D_r draw is all-correct: a correct forget row ties (1/2), a wrong one loses (0) -> AUC = 0.5 * a_f
    forget = [1, 1, 1, 0, 0]
    assert metrics.knowledge_gap(forget, [1] * 40, seed=0) == pytest.approx(0.5 * 0.6)
    # D_f positive: a model that is right on D_f and wrong on D_r scores 1, not 0 (the upstream slip)
    assert metrics.knowledge_gap([1, 1], [0] * 10, seed=0) == pytest.approx(1.0)


def test_knowledge_gap_matches_mann_whitney_with_the_same_seeded_draws():
    generator = np.random.default_rng(5)
    forget = generator.integers(0, 2, 12)
    retain = generator.integers(0, 2, 50)
    draws = np.random.default_rng(11)
    expected = []
    for _ in range(500):
        sample = retain[draws.choice(len(retain), size=len(forget), replace=False)]
        wins = sum((f > r) + 0.5 * (f == r) for f in forget for r in sample)
        expected.append(wins / (len(forget) * len(sample)))
    assert metrics.knowledge_gap(forget, retain, seed=11) == pytest.approx(np.mean(expected))
    assert metrics.knowledge_gap(forget, retain, seed=11) == metrics.knowledge_gap(forget, retain, seed=11)
    assert math.isnan(metrics.knowledge_gap(forget, retain[:5], seed=0))


def test_rank_auc_equals_sklearn():
    from sklearn.metrics import roc_auc_score

    generator = np.random.default_rng(2)
    for _ in range(5):
        pos, neg = generator.integers(0, 3, 9).astype(float), generator.normal(1, 1, 7)
        expected = roc_auc_score(np.r_[np.ones(9), np.zeros(7)], np.r_[pos, neg])
        assert metrics.roc_auc(pos, neg) == pytest.approx(expected)


def test_zrf_is_one_minus_mean_squared_js_distance():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]])
    q = np.array([[1 / 3, 1 / 3, 1 / 3], [0.2, 0.5, 0.3], [1 / 3, 1 / 3, 1 / 3]])
    expected = 1 - np.mean([jensenshannon(a, b) ** 2 for a, b in zip(p, q)])
    assert metrics.zrf(p, q) == pytest.approx(expected)
    assert metrics.zrf(q, q) == pytest.approx(1.0)
    one_hot = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert metrics.zrf(one_hot, one_hot[::-1]) == pytest.approx(1 - math.log(2))


def test_selection_score_reports_both_components():
    dt, df, hm = metrics.selection_terms(test_acc=0.8, orig_test_acc=0.9, forget_acc=0.3, random_acc=0.01)
    assert dt == pytest.approx(0.9) and df == pytest.approx(0.29)
    assert hm == pytest.approx(2 * 0.9 * 0.29 / (0.9 + 0.29))
    assert metrics.overall(hm, 0.4) == pytest.approx((hm + 0.4) / 3)
    assert metrics.overall(hm, None) == pytest.approx(hm / 2)
    assert metrics.selection_terms(0.8, None, 0.3, 0.5) == (None, pytest.approx(0.2), None)


def test_klom_point_hand_calculation():
    # range [0, 1], 20 bins: p = 1/2 in bin 0 and 1/2 in bin 19; q = 1 in bin 0 -> q floored at 1e-5 in bin 19
    expected = 0.5 * math.log(0.5 / 1.0) + 0.5 * math.log(0.5 / 1e-5)
    assert klom_point([0, 0, 1, 1], [0, 0, 0, 0]) == pytest.approx(expected)
    assert klom_point([2.0, 2.0], [2.0, 2.0]) == 0.0
    # clipping to [-100, 100]: 500 and 100 fall in the same top bin
    assert klom_point([-100, 500], [-100, 100]) == pytest.approx(0.0)


def test_klom_scores_per_point_and_summary():
    oracle = np.array([[0.0, 5.0], [1.0, 5.0], [0.0, 6.0], [1.0, 6.0]])
    unlearned = np.array([[0.0, 5.0], [1.0, 5.0], [0.0, 6.0], [1.0, 6.0]])
    scores = klom_scores(oracle, unlearned)
    assert scores == pytest.approx([0.0, 0.0])
    shifted = klom_scores(oracle, unlearned + np.array([0.0, 50.0]))
    assert shifted[0] == 0.0 and shifted[1] > 5
    summary = summarise(shifted)
    assert summary["n"] == 2 and summary["mean"] == pytest.approx(shifted.mean())
    with pytest.raises(ValueError):
        klom_scores(oracle, unlearned[:, :1])
