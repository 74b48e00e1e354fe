"""PrivLeak arithmetic and the MUSE <-> mu-eval AUC converter, on the published constants."""

import math

import pytest

from mu_eval.tasks.muse.reference import (
    MUSE_RETRAIN_AUC,
    privleak_against_published,
    published_retrain_auc,
    to_muse_orientation,
)


def test_published_retrain_aucs_convert_to_this_projects_orientation():
    assert MUSE_RETRAIN_AUC == {"news": 0.4772, "books": 0.5393}
    assert published_retrain_auc("news") == pytest.approx(0.5228, abs=1e-12)
    assert published_retrain_auc("books") == pytest.approx(0.4607, abs=1e-12)
    for corpus in ("news", "books"):
        assert to_muse_orientation(published_retrain_auc(corpus)) == pytest.approx(MUSE_RETRAIN_AUC[corpus])


def test_muse_news_target_auc_gives_minus_99_81():
    # MUSE-News' published retrained AUC 0.5228 and a target at 0.9991: (0.5228 - 0.9991) / (1 - 0.5228) x 100
    value = privleak_against_published("news", 0.9991)
    assert round(value, 2) == -99.81
    assert value == pytest.approx((0.5228 - 0.9991) / 0.4772 * 100)
    # the same number in MUSE's own orientation and formula: (AUC_unl - AUC_ret) / AUC_ret x 100
    muse_unlearned, muse_retrain = 1 - 0.9991, 0.4772
    assert value == pytest.approx((muse_unlearned - muse_retrain) / muse_retrain * 100)


def test_books_reference_and_retrained_model_scores_zero():
    assert privleak_against_published("books", 0.4607) == pytest.approx(0.0, abs=1e-9)
    assert privleak_against_published("books", 0.3) == pytest.approx((0.4607 - 0.3) / (1 - 0.4607) * 100)


def test_unknown_corpus_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown MUSE corpus 'films'"):
        published_retrain_auc("films")
    assert math.isfinite(published_retrain_auc("news"))
