"""MMLU as a utility check beside WMDP: lm-eval's prompt, 0-shot or k-shot from the `dev` split.

Shots are the first k `dev` questions of the same subject, each followed by " <letter>" and a blank line;
the reported `acc` is the size-weighted mean over subjects (lm-eval's `mmlu` group), `acc_<subject>`
each subject, and `acc_mmlu_<group>` the size-weighted mean over the subjects of each of the MMLU
authors' four categories (mmlu_categories.py) that the run includes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from mu_eval.data import DataError, DatasetSpec
from mu_eval.options import option
from mu_eval.requests import Request, Result
from mu_eval.task import MetricValue, Task, TaskContext, TaskOptionError, TaskResult

from . import multiple_choice as mc
from .mmlu_categories import GROUP_NAMES, group_of

HF_ID = "cais/mmlu"
FIELDS = ("question", "subject", "choices", "answer")
MAX_SHOTS = 5


def mmlu_spec(config: str, split: str) -> DatasetSpec:
    return DatasetSpec(HF_ID, config, split, required_fields=FIELDS)


@dataclass
class MmluOptions:
    """The options of the MMLU tasks (`--task-args`)."""

    subjects: list[str] = option(default_factory=lambda: ["all"], help="'all' or subject names joined by '+'")
    num_fewshot: int | None = option(None, minimum=0, maximum=MAX_SHOTS,
                                     help=f"solved examples from the dev split, 0..{MAX_SHOTS} (default: the task's)")


def parse_subjects(names: list[str]) -> tuple[str, ...] | None:
    """None for "all"; otherwise the subject names."""
    if names == ["all"]:
        return None
    if not names or "all" in names:
        raise TaskOptionError("MMLU subjects: expected 'all' or subject names joined by '+'")
    return tuple(names)


def shot_text(row: dict, where: str) -> str:
    """One solved example: the question as asked, then the gold letter after the target delimiter."""
    letter = mc.LETTERS[mc.answer_index(row, where)]
    return f"{mc.question_text(row['question'], mc.check_choices(row, where))} {letter}"


def mmlu_context(subject: str, row: dict, shots: Sequence[dict], where: str) -> str:
    solved = "".join(shot_text(shot, f"{where} (shot {i})") + "\n\n" for i, shot in enumerate(shots))
    return mc.header(subject) + solved + mc.question_text(row["question"], mc.check_choices(row, where))


class MmluTask(Task):
    """Options: `subjects` ("all" or names joined by "+"), `num_fewshot` (0..5, from the dev split)."""

    name = "mmlu"
    description = "MMLU (cais/mmlu) multiple choice, lm-eval prompt; num_fewshot 0 (default) to 5"
    datasets = (mmlu_spec("all", "test"), mmlu_spec("all", "dev"))
    default_fewshot = 0

    Options: ClassVar[type | None] = MmluOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.subjects = parse_subjects(self.settings.subjects)
        fewshot = self.settings.num_fewshot
        self.num_fewshot = self.default_fewshot if fewshot is None else fewshot
        self.counts: dict[str, int] = {}
        self.golds: list[int] = []

    def _load(self, ctx: TaskContext, split: str) -> dict[str, list[dict]]:
        """Rows of `split` grouped by subject, in file order."""
        configs = ["all"] if self.subjects is None else list(self.subjects)
        grouped: dict[str, list[dict]] = {}
        for config in configs:
            for row in ctx.load(mmlu_spec(config, split)):
                subject = str(row["subject"]) if config == "all" else config
                grouped.setdefault(subject, []).append(row)
        return grouped

    def build_requests(self, ctx: TaskContext) -> list[Request]:
        tests = self._load(ctx, "test")
        dev = self._load(ctx, "dev") if self.num_fewshot else {}
        requests: list[Request] = []
        self.counts, self.golds = {}, []
        for subject, rows in tests.items():
            shots = dev.get(subject, [])[: self.num_fewshot]
            if len(shots) < self.num_fewshot:
                raise DataError(f"MMLU subject {subject!r}: {len(shots)} dev examples for {self.num_fewshot} shots")
            rows = ctx.limited(rows)
            for index, row in enumerate(rows):
                where = f"dataset {HF_ID!r} subject {subject!r} test row {index}"
                requests.append(mc.choose_request(mmlu_context(subject, row, shots, where)))
                self.golds.append(mc.answer_index(row, where))
            self.counts[subject] = len(rows)
        return requests

    def process_results(self, results: list[Result], ctx: TaskContext) -> TaskResult:
        correct = mc.correctness(results, self.golds)
        variant = f"lm-eval mmlu prompt, {self.num_fewshot}-shot (dev split), argmax over ' A'..' D'"
        metrics: dict[str, MetricValue] = {"acc": mc.accuracy(correct, variant + "; size-weighted over subjects")}
        subjects = [subject for subject, count in self.counts.items() for _ in range(count)]
        grouped = self._group_items(subjects, correct)
        for group, values in grouped.items():
            metrics[f"acc_mmlu_{group}"] = mc.accuracy(
                values, f"{variant}; MMLU category {GROUP_NAMES[group]!r}, size-weighted over its subjects")
        cursor = 0
        for subject, count in self.counts.items():
            metrics[f"acc_{subject}"] = mc.accuracy(correct[cursor : cursor + count], variant)
            cursor += count
        samples = [{"subject": s, "gold": g, "choice": r.choice, "logprobs": list(r.logprobs)}  # type: ignore[union-attr]
                   for s, g, r in zip(subjects, self.golds, results)]
        return TaskResult(
            metrics=metrics,
            items={"correct": correct},
            samples=samples,
            info={"subject_sizes": dict(self.counts), "num_fewshot": self.num_fewshot,
                  "group_sizes": {f"mmlu_{group}": len(values) for group, values in grouped.items()},
                  "ungrouped_subjects": [s for s in self.counts if group_of(s) is None],
                  "single_pass_share": mc.single_pass_share(results)},
        )

    @staticmethod
    def _group_items(subjects: list[str], correct: list[float]) -> dict[str, list[float]]:
        """Per-question correctness pooled by category (pooling is the size-weighted mean over subjects);
        only categories with questions in this run appear, in the canonical order."""
        pooled: dict[str, list[float]] = {group: [] for group in GROUP_NAMES}
        for subject, value in zip(subjects, correct):
            group = group_of(subject)
            if group is not None:
                pooled[group].append(value)
        return {group: values for group, values in pooled.items() if values}


class Mmlu5Shot(MmluTask):
    name = "mmlu_5shot"
    description = "MMLU (cais/mmlu) multiple choice, lm-eval prompt, 5-shot from the dev split"
    default_fewshot = 5
