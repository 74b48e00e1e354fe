"""Normalised answer matching for the generation attacks (SQuAD-style normalisation, containment)."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})


def normalize_answer(text: str) -> str:
    """Lower case, no accents, punctuation or articles, single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _ARTICLES.sub(" ", text.translate(_PUNCTUATION))
    return " ".join(text.split())


def contains_answer(generation: str, answers: Iterable[str]) -> bool:
    """True when a normalised gold answer appears, on word boundaries, in the normalised generation."""
    haystack = f" {normalize_answer(generation)} "
    for answer in answers:
        needle = normalize_answer(answer)
        if needle and f" {needle} " in haystack:
            return True
    return False


def rate(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None
