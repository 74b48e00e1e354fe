"""Published MUSE reference AUCs and the one conversion between MUSE's AUC orientation and mu-eval's.

MUSE labels the forget set 0 and feeds -(loss-like score) to `roc_auc_score`, so its AUC is 1 - ours
(docs/attacks.md, "One AUC convention"). The constants are kept in MUSE's orientation, exactly as published, and
converted here only.
"""

from __future__ import annotations

from mu_eval.metrics.mia import auc_from_muse, auc_to_muse, privleak

#: Min-40% forget-vs-holdout AUC of the retrained models, in MUSE's orientation, as published.
MUSE_RETRAIN_AUC: dict[str, float] = {"news": 0.4772, "books": 0.5393}


def published_retrain_auc(corpus: str) -> float:
    """The retrained model's AUC for `corpus` ("news" or "books") in mu-eval's orientation (forget positive)."""
    try:
        return auc_from_muse(MUSE_RETRAIN_AUC[corpus])
    except KeyError:
        raise ValueError(f"unknown MUSE corpus {corpus!r}; expected one of {sorted(MUSE_RETRAIN_AUC)}") from None


def to_muse_orientation(auc: float) -> float:
    """An AUC of ours as MUSE would print it (its `forget_holdout_Min-40%` key)."""
    return auc_to_muse(auc)


def privleak_against_published(corpus: str, auc: float) -> float | None:
    """PrivLeak of a model whose forget-vs-holdout AUC (our orientation) is `auc`, against the published retrain."""
    return privleak(auc, published_retrain_auc(corpus))
