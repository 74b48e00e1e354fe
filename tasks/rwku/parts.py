"""The parts of an RWKU evaluation for one unit (one target, or one batch of targets).

Each part turns rows into requests and returns a `Piece` whose `finish` maps the answers, in the same
order, to per-item values keyed by metric name (plus per-item samples).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mu_eval.metrics.mia import min_k_plus_plus_score, min_k_score
from mu_eval.metrics.rouge import rougeL_recall_rwku
from mu_eval.requests import Choose, ChooseResult, Generate, GenerateResult, Request, Result, Score, ScoreResult

from . import scoring
from .prompts import ICU_PREFIX, PromptBuilder, completion_context, truthfulqa_choices

PROBE_MAX_NEW_TOKENS = 30
PROBE_STOP = ("\n",)
LONG_MAX_NEW_TOKENS = 256
LEVEL_NAMES = {1: "fb", 2: "qa", 3: "aa"}
MMLU_OPTIONS = (" A", " B", " C", " D")
#: Min-K% / Min-K%++ percentages RWKU reports (k = 0.1 ... 1.0), the suffix of `mia_*_mink<K>` / `mia_*_minkpp<K>`.
MIA_PERCENTS = tuple(range(10, 101, 10))

Values = dict[str, list[float]]


@dataclass
class Piece:
    requests: list[Request]
    finish: Callable[[list[Result]], tuple[Values, list[dict]]]


def type_slug(kind: str) -> str:
    """Metric-name form of an adversarial probe type: "prefix injection" -> "prefix_injection"."""
    return re.sub(r"[^a-z0-9]+", "_", kind.lower()).strip("_") or "untyped"


def _texts(results: Sequence[Result]) -> list[str]:
    texts = []
    for result in results:
        if not isinstance(result, GenerateResult):
            raise TypeError(f"expected a GenerateResult, got {type(result).__name__}")
        texts.append(result.text)
    return texts


def probes(prefix: str, levels: dict[int, list[dict]], prompts: PromptBuilder) -> Piece:
    """Forget or neighbour probes: greedy 30 tokens, cut at "\\n", stripped, ROUGE-L recall of `rouge` 1.0.1."""
    rows = [(level, row) for level in sorted(levels) for row in levels[level]]
    requests: list[Request] = [
        Generate(prompts.probe(row, level), PROBE_MAX_NEW_TOKENS, PROBE_STOP) for level, row in rows
    ]

    def finish(results: list[Result]) -> tuple[Values, list[dict]]:
        values: Values = {f"{prefix}_all": []}
        for level in sorted(levels):
            values[f"{prefix}_{LEVEL_NAMES[level]}"] = []
        samples = []
        for (level, row), text in zip(rows, _texts(results)):
            prediction = scoring.probe_prediction(text)
            recall = rougeL_recall_rwku(str(row["answer"]), prediction)
            values[f"{prefix}_{LEVEL_NAMES[level]}"].append(recall)
            values[f"{prefix}_all"].append(recall)
            if level == 3:
                values.setdefault(f"{prefix}_aa_{type_slug(str(row['type']))}", []).append(recall)
            samples.append({"part": prefix, "subject": row["subject"], "level": level, "type": row.get("type"),
                            "query": row["query"], "gold": row["answer"], "prediction": prediction,
                            "rougeL_recall": recall})
        return values, samples

    return Piece(requests, finish)


def mia(sets: dict[str, list[dict]], icu: bool) -> Piece:
    """LOSS (mean NLL over every token after BOS, x100 when reported), zlib, Min-K% and Min-K%++ at 10..100%.

    All from the one Score answer per text. Min-K uses RWKU's m = floor(k*T) without the m >= 1 guard, so a
    text shorter than 1/k tokens gives NaN, which aggregation counts like a NaN loss (`info.nan_skipped`).
    With the ICU baseline, RWKU scores the prefixed text, prefix included.
    """
    rows = [(name, row) for name, group in sets.items() for row in group]

    def text_of(row: dict) -> str:
        return (ICU_PREFIX.format(subject=row["subject"]) if icu else "") + str(row["text"])

    requests: list[Request] = [Score("", text_of(row), vocab_stats=True) for _, row in rows]  # Min-K%++

    def finish(results: list[Result]) -> tuple[Values, list[dict]]:
        values: Values = {}
        for (name, row), result in zip(rows, results):
            if not isinstance(result, ScoreResult):
                raise TypeError(f"expected a ScoreResult, got {type(result).__name__}")
            nll = result.nll(include_eos=False)
            compressed = len(zlib.compress(text_of(row).encode("utf-8")))
            values.setdefault(name, []).append(nll)
            values.setdefault(f"{name}_zlib", []).append(-nll / compressed)
            # a text with a non-finite loss is skipped for every score, as RWKU does (but counted here): a NaN
            # token would otherwise land anywhere in the sort and leave a Min-K value over part of the text
            scored = math.isfinite(nll)
            for percent in MIA_PERCENTS:
                k = percent / 100
                mink = min_k_score(result, k, guard=False) if scored else math.nan
                minkpp = min_k_plus_plus_score(result, k, guard=False) if scored else math.nan
                values.setdefault(f"{name}_mink{percent}", []).append(mink)
                values.setdefault(f"{name}_minkpp{percent}", []).append(minkpp)
        return values, []

    return Piece(requests, finish)


def general(rows: list[dict], prompts: PromptBuilder) -> Piece:
    """MMLU 5-shot (RWKU's prompt): the most likely of " A".." D" after "Answer:"."""
    requests: list[Request] = [Choose(prompts.mmlu(row), MMLU_OPTIONS) for row in rows]

    def finish(results: list[Result]) -> tuple[Values, list[dict]]:
        correct = []
        for row, result in zip(rows, results):
            if not isinstance(result, ChooseResult):
                raise TypeError(f"expected a ChooseResult, got {type(result).__name__}")
            correct.append(float(result.choice == int(row["answer"])))
        return {"utility_gen": correct}, []

    return Piece(requests, finish)


def reason(rows: list[dict], prompts: PromptBuilder) -> Piece:
    """BBH 3-shot chain of thought: greedy 256 tokens, answer after "the answer is", exact match."""
    requests: list[Request] = [Generate(prompts.bbh(row), LONG_MAX_NEW_TOKENS) for row in rows]

    def finish(results: list[Result]) -> tuple[Values, list[dict]]:
        scores, samples = [], []
        for row, text in zip(rows, _texts(results)):
            prediction = scoring.bbh_prediction(text)
            scores.append(scoring.best_over(scoring.exact_match, prediction, scoring.as_references(row["answer"])))
            samples.append({"part": "reason", "gold": row["answer"], "prediction": prediction, "em": scores[-1]})
        return {"utility_rea": scores}, samples

    return Piece(requests, finish)


def truthfulness(rows: list[dict], prompts: PromptBuilder) -> Piece:
    """TruthfulQA MC1: 1 when the first true answer's summed log-prob beats every false answer's."""
    layout: list[tuple[int, int]] = []
    requests: list[Request] = []
    for row in rows:
        choices, true_index = truthfulqa_choices(row)
        context, space = completion_context(prompts.truthfulqa(row))
        requests += [Score(context, space + choice) for choice in choices]
        layout.append((len(choices), true_index))

    def finish(results: list[Result]) -> tuple[Values, list[dict]]:
        scores, cursor = [], 0
        for count, true_index in layout:
            sums = [r.sum_logprob() for r in results[cursor : cursor + count]]  # type: ignore[union-attr]
            cursor += count
            false = [s for i, s in enumerate(sums) if i != true_index]
            scores.append(float(sums[true_index] > max(false)))
        return {"utility_tru": scores}, []

    return Piece(requests, finish)


def factuality(rows: list[dict], prompts: PromptBuilder) -> Piece:
    """TriviaQA: greedy 30 tokens (stop at EOS only), best token F1 over the gold aliases."""
    requests: list[Request] = [Generate(prompts.triviaqa(row), PROBE_MAX_NEW_TOKENS) for row in rows]

    def finish(results: list[Result]) -> tuple[Values, list[dict]]:
        scores, samples = [], []
        for row, text in zip(rows, _texts(results)):
            scores.append(scoring.best_over(scoring.token_f1, text, scoring.as_references(row["answers"])))
            samples.append({"part": "factuality", "gold": row["answers"], "prediction": text, "f1": scores[-1]})
        return {"utility_fac": scores}, samples

    return Piece(requests, finish)


def fluency(rows: list[dict], prompts: PromptBuilder) -> Piece:
    """AlpacaEval instructions: greedy 256 tokens, weighted bi-/tri-gram entropy of the NLTK words."""
    requests: list[Request] = [Generate(prompts.fluency(row), LONG_MAX_NEW_TOKENS) for row in rows]

    def finish(results: list[Result]) -> tuple[Values, list[dict]]:
        tokenize, _ = scoring.word_tokenizer()
        scores = [scoring.fluency_entropy(tokenize(text)) for text in _texts(results)]
        return {"utility_flu": scores}, []

    return Piece(requests, finish)


def finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]
