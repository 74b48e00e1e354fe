"""ROUGE variants used by the benchmarks, each named for what it computes."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=8)
def _scorer(types: tuple[str, ...], stemmer: bool) -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(types), use_stemmer=stemmer)


def rouge_scores(gold: str, prediction: str, types: tuple[str, ...] = ("rougeL",), stemmer: bool = True) -> dict:
    """`rouge_score` scores of `prediction` against `gold` (target first, as that package expects)."""
    return _scorer(types, stemmer).score(gold, prediction)


def rougeL_recall(gold: str, prediction: str, stemmer: bool = True) -> float:
    """TOFU: ROUGE-L recall with stemming."""
    return rouge_scores(gold, prediction, ("rougeL",), stemmer)["rougeL"].recall


def rougeL_f1(gold: str, prediction: str, stemmer: bool = False) -> float:
    """MUSE: ROUGE-L F1 without stemming."""
    return rouge_scores(gold, prediction, ("rougeL",), stemmer)["rougeL"].fmeasure


def rouge_f1_all(gold: str, prediction: str, stemmer: bool = True) -> dict[str, float]:
    """MLLMU-Bench: ROUGE-1/2/L F1 with stemming."""
    scores = rouge_scores(gold, prediction, ("rouge1", "rouge2", "rougeL"), stemmer)
    return {name: score.fmeasure for name, score in scores.items()}


def rougeL_recall_rwku(gold: str, prediction: str) -> float:
    """RWKU: ROUGE-L recall of the PyPI `rouge` 1.0.1 package (whitespace tokens, case-sensitive).

    Reproduced by calling that package, so "Portland" vs "Portland, Maine." is 0.0 as in the paper.
    Empty strings, which that package rejects, score 0.
    """
    from rouge import Rouge

    if not gold.strip() or not prediction.strip():
        return 0.0
    try:
        return float(Rouge().get_scores(prediction, gold)[0]["rouge-l"]["r"])
    except ValueError:
        return 0.0
