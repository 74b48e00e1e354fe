"""Shared pieces of four-option multiple-choice tasks: the lm-eval prompt, answer checks, accuracy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mu_eval.data import DataError
from mu_eval.requests import Choose, ChooseResult, Result, Truncation
from mu_eval.task import MetricValue

LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
#: lm-eval's target delimiter is a space, so the options are " A" .. " D".
OPTIONS: tuple[str, ...] = tuple(f" {letter}" for letter in LETTERS)
#: lm-eval cuts a question longer than the model's context from the left (it keeps the last tokens).
LM_EVAL_TRUNCATION = Truncation("left")


def header(topic: str) -> str:
    """The lm-eval description; MMLU subjects are written with spaces instead of underscores."""
    return f"The following are multiple choice questions (with answers) about {topic.replace('_', ' ')}.\n\n"


def question_text(question: str, choices: Sequence[str]) -> str:
    """lm-eval's `doc_to_text`: the stripped question, the four lettered choices, then "Answer:"."""
    lines = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, choices))
    return f"{question.strip()}{lines}\nAnswer:"


def answer_index(row: dict, where: str) -> int:
    """The gold option as 0..3 (the hub stores an int; a letter is accepted too)."""
    value = row["answer"]
    if isinstance(value, str) and value.strip().upper() in LETTERS:
        return LETTERS.index(value.strip().upper())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(LETTERS):
        return value
    raise DataError(f"{where}: answer {value!r} is not an option index 0-3 or a letter A-D")


def check_choices(row: dict, where: str) -> list[str]:
    choices = row["choices"]
    if not isinstance(choices, list | tuple) or len(choices) != len(LETTERS):
        raise DataError(f"{where}: expected {len(LETTERS)} choices, got {choices!r}")
    return [str(c) for c in choices]


def choose_request(context: str) -> Choose:
    return Choose(context, OPTIONS, LM_EVAL_TRUNCATION)


def correctness(answers: Sequence[Result], golds: Sequence[int]) -> list[float]:
    """1.0 where the most likely option is the gold one."""
    out = []
    for answer, gold in zip(answers, golds):
        if not isinstance(answer, ChooseResult):
            raise TypeError(f"expected a ChooseResult, got {type(answer).__name__}")
        out.append(1.0 if answer.choice == gold else 0.0)
    return out


def accuracy(correct: Sequence[float], variant: str | None = None) -> MetricValue:
    """Mean accuracy with the standard error of the mean (sample standard deviation / sqrt n), as lm-eval."""
    n = len(correct)
    if n == 0:
        return MetricValue.missing("no questions", higher_is_better=True)
    mean = sum(correct) / n
    stderr = math.sqrt(sum((c - mean) ** 2 for c in correct) / (n - 1) / n) if n > 1 else None
    return MetricValue(mean, n, True, stderr, variant=variant)


def single_pass_share(answers: Sequence[Any]) -> float:
    """Share of questions answered from one next-token distribution (the rest fell back to scoring)."""
    flags = [bool(getattr(a, "single_pass", False)) for a in answers]
    return sum(flags) / len(flags) if flags else math.nan
