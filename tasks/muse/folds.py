"""MUSE's scalability and sustainability forget sets as protocol folds (docs/protocols.md: MUSE's C5 and C6).

`sust/forget_1..4` are pairwise disjoint requests, so each file is one fold and the sequential protocol
unlearns them one after another. `scal/forget_1..4` are nested (forget_k holds forget_1..forget_k-1), so the
folds are the differences between consecutive files: the growing protocol's step k (folds 1..k together)
then unlearns exactly `scal/forget_k`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from mu_eval.data import DataError, DatasetSpec
from mu_eval.task import TaskOptionError

from . import data


def parse_fold_config(value: Any, corpus: str) -> str | None:
    """The `forget_folds` option: None (no folds of MUSE's own), "scal" or "sust"."""
    if value is None:
        return None
    config = str(value).strip().lower()
    if config not in data.FOLD_CONFIGS:
        raise TaskOptionError(f"MUSE forget_folds={value!r}: expected one of {', '.join(data.FOLD_CONFIGS)}")
    if corpus not in data.FOLD_CORPORA:
        raise TaskOptionError(f"MUSE forget_folds={config}: the {corpus} corpus has no scal/sust forget sets "
                         f"(only {', '.join(data.FOLD_CORPORA)} has)")
    return config


def _name(config: str, index: int) -> str:
    return f"{config}/forget_{index}"


def load_fold_texts(load: Callable[[DatasetSpec], list[dict]], corpus: str, config: str) -> list[list[str]]:
    """The texts of forget_1..forget_4 of `config`, in file order; an empty file is an error."""
    sets = []
    for index in range(1, data.FOLD_COUNT + 1):
        spec = data.fold_spec(corpus, config, index)
        texts = [row["text"] for row in load(spec)]
        if not texts:
            raise DataError(f"MUSE {_name(config, index)} ({spec.describe()}) has no texts")
        sets.append(texts)
    return sets


def nested_differences(sets: list[list[str]], corpus: str, config: str) -> list[list[str]]:
    """What each set adds to the one before (as multisets, keeping file order); sets that are not nested
    are an error naming the split, since unlearning a set that drops earlier texts is not MUSE's C5."""
    folds: list[list[str]] = []
    previous: Counter[str] = Counter()
    for index, texts in enumerate(sets, start=1):
        current = Counter(texts)
        missing = previous - current
        spec = data.fold_spec(corpus, config, index)
        if missing:
            raise DataError(
                f"MUSE {_name(config, index)} ({spec.describe()}) does not contain {_name(config, index - 1)}: "
                f"{sum(missing.values())} of its texts are missing, but {config} sets must be nested"
            )
        left = previous.copy()
        fold = []
        for text in texts:
            if left[text] > 0:
                left[text] -= 1
            else:
                fold.append(text)
        if not fold:
            raise DataError(f"MUSE {_name(config, index)} ({spec.describe()}) adds no text to "
                            f"{_name(config, index - 1)}")
        folds.append(fold)
        previous = current
    return folds


def load_folds(load: Callable[[DatasetSpec], list[dict]], corpus: str, config: str) -> list[list[str]]:
    """Disjoint folds, in request order: sust's files as they are, scal's as differences."""
    sets = load_fold_texts(load, corpus, config)
    return nested_differences(sets, corpus, config) if config == "scal" else sets
