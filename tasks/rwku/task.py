"""The RWKU task: forget, neighbour, MIA and utility probes per target or for a batch of targets.

Per-target mode (`rwku`) evaluates each selected target on its own probes and reports the mean over
targets, as the paper's tables do (each target is unlearned separately); batch mode (`rwku_batch`)
pools the probes of all selected targets into one unit, as RWKU's batch-unlearning setting.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

from mu_eval.data import DataError
from mu_eval.options import option
from mu_eval.requests import Request, Result
from mu_eval.task import MetricValue, Task, TaskContext, TaskOptionError, TaskResult, UnlearningData

from . import parts, scoring, training
from .data import DEFAULT_NUM_TARGETS, SPECS, by_subject, names_only, select_targets, targets_from_file
from .prompts import PromptBuilder

UTILITY = ("general", "reason", "truthfulness", "factuality", "fluency")
PARTS = ("forget", "neighbor", "mia", *UTILITY)
#: Sets each part reads.
PART_SETS: dict[str, tuple[str, ...]] = {
    "forget": ("forget_level1", "forget_level2", "forget_level3"),
    "neighbor": ("neighbor_level1", "neighbor_level2"),
    "mia": ("mia_forget", "mia_retain"),
    "general": ("utility_general",), "reason": ("utility_reason",), "truthfulness": ("utility_truthfulness",),
    "factuality": ("utility_factuality",), "fluency": ("utility_fluency",),
}
#: metric -> (scale, higher_is_better); names with a known prefix inherit its entry (per-type metrics).
METRICS: dict[str, tuple[float, bool | None]] = {
    "forget": (100.0, False), "neighbor": (100.0, True),
    "mia_fm": (100.0, True), "mia_rm": (100.0, None),
    "mia_fm_zlib": (1.0, None), "mia_rm_zlib": (1.0, None),
    **{f"mia_{side}_{score}{percent}": (1.0, None)
       for side in ("fm", "rm") for score in ("mink", "minkpp") for percent in parts.MIA_PERCENTS},
    "utility": (100.0, True),
}


def metric_properties(name: str) -> tuple[float, bool | None]:
    if name in METRICS:
        return METRICS[name]
    return METRICS[name.split("_", 1)[0]]


def parse_parts(value: Any) -> tuple[str, ...]:
    """Parts joined by "+"; "utility" stands for its five sets."""
    names = value if isinstance(value, list | tuple) else str(value).replace(",", "+").split("+")
    chosen: list[str] = []
    for name in (str(n).strip() for n in names if str(n).strip()):
        expanded = UTILITY if name == "utility" else (name,)
        for part in expanded:
            if part not in PARTS:
                raise ValueError(f"unknown RWKU part {part!r}; expected some of {'+'.join(PARTS)} or 'utility'")
            if part not in chosen:
                chosen.append(part)
    if not chosen:
        raise ValueError("no RWKU part selected")
    return tuple(chosen)


@dataclass
class RwkuOptions:
    """The options of the RWKU tasks (`--task-args`)."""

    targets: str | list[str] | None = option(
        None, help="names, 1-based indices or ranges (3-7) joined by '|'; default: the first num_targets")
    num_targets: int = option(DEFAULT_NUM_TARGETS, minimum=1, help="the first N targets when targets is not given")
    targets_file: str | None = option(None, help="target order from a JSON list or all_intro.json")
    parts: str = option("+".join(PARTS), help="parts joined by '+'; 'utility' stands for its five sets")
    icu: bool = option(False, help="prepend RWKU's in-context-unlearning instruction")
    train_corpus: str = option("positive", choices=training.CORPORA, help="the corpus methods train on")
    corpus_model: str = option("llama3", choices=training.CORPUS_MODELS, help="the model that wrote the corpus")


class RwkuTask(Task):
    """Options: `targets` (names, 1-based indices or ranges joined by "|"), `num_targets` (first N, default
    100), `targets_file` (target order from a JSON list or `all_intro.json`), `parts` (default all),
    `icu` (prepend RWKU's in-context-unlearning instruction); for methods that train, `train_corpus`
    (positive, passage, pair or refusal) and `corpus_model` (llama3 or phi3, the model that wrote it)."""

    name = "rwku"
    mode = "target"
    description = "RWKU per target: forget FB/QA/AA (+ 9 attack types), neighbour, MIA, utility; mean over targets"
    datasets = tuple(SPECS.values())

    Options: ClassVar[type | None] = RwkuOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        settings = self.settings
        try:
            self.parts = parse_parts(settings.parts)
        except ValueError as error:
            raise TaskOptionError(f"task {self.name!r}: {error}") from None
        self.selection = settings.targets
        self.num_targets = settings.num_targets
        self.targets_file = settings.targets_file
        self.icu = settings.icu
        self.train_corpus = settings.train_corpus
        self.corpus_model = settings.corpus_model
        self.plan: list[tuple[str, parts.Piece]] = []
        self.targets: list[str] = []

    def _target_order(self, ctx: TaskContext) -> list[str]:
        """`targets_file`, else `forget_target`; explicit names need neither when both are missing."""
        if self.targets_file:
            return targets_from_file(self.targets_file)
        try:
            return [str(row["target"]) for row in ctx.load(SPECS["forget_target"])]
        except DataError as error:
            names = names_only(self.selection)
            if names is None:
                raise DataError(f"{error}; RWKU targets can also be given by name (targets=) or with "
                                f"targets_file= (a JSON list, or all_intro.json)") from error
            return names

    def config(self) -> dict[str, Any]:
        """The resolved training-corpus options too, so a method run's report says what it trained on."""
        return {**super().config(), "train_corpus": self.train_corpus, "corpus_model": self.corpus_model}

    def unlearning_data(self, ctx: TaskContext) -> UnlearningData:
        """The selected targets' rows of the `train_corpus` config as forget examples (all rows, not limited).

        No retain examples: RWKU's GA, NPO, DPO and RT scripts train on the forget corpus alone.
        """
        targets = select_targets(self._target_order(ctx), self.selection, self.num_targets)
        if self.mode == "target" and len(targets) > 1:
            warnings.warn(f"{self.name}: the training corpus pools {len(targets)} targets, so they are unlearned "
                          "together; RWKU unlearns one target per run (targets=N), its batch setting is "
                          "rwku_batch", stacklevel=2)
        spec = training.corpus_spec(self.train_corpus, self.corpus_model)
        turn = PromptBuilder(ctx).turn
        forget = training.forget_examples(ctx.load(spec), self.train_corpus, spec, targets, turn)
        return UnlearningData(forget=forget, retain=[])

    def build_requests(self, ctx: TaskContext) -> list[Request]:
        self.targets = select_targets(self._target_order(ctx), self.selection, self.num_targets)
        units = [(t, [t]) for t in self.targets] if self.mode == "target" else [("batch", self.targets)]
        needed = {name for part in self.parts for name in PART_SETS[part]}
        grouped = {name: by_subject(ctx.load(SPECS[name])) for name in sorted(needed)}
        prompts = PromptBuilder(ctx, icu=self.icu)
        self.plan = []
        for unit, members in units:

            def rows(set_name: str, members: list[str] = members) -> list[dict]:
                return [r for t in members for r in ctx.limited(grouped[set_name].get(t, []))]

            for part in self.parts:
                self.plan.append((unit, self._piece(part, rows, prompts)))
        return [request for _, piece in self.plan for request in piece.requests]

    def _piece(self, part: str, rows: Any, prompts: PromptBuilder) -> parts.Piece:
        if part in ("forget", "neighbor"):
            levels = {level: rows(f"{part}_level{level}") for level in (1, 2, 3) if f"{part}_level{level}" in SPECS}
            return parts.probes(part, levels, prompts)
        if part == "mia":
            return parts.mia({"mia_fm": rows("mia_forget"), "mia_rm": rows("mia_retain")}, self.icu)
        builder = getattr(parts, part)
        return builder(rows(PART_SETS[part][0]), prompts)

    def process_results(self, results: list[Result], ctx: TaskContext) -> TaskResult:
        per_unit: dict[str, dict[str, list[float]]] = {}
        samples: list[dict] = []
        cursor = 0
        for unit, piece in self.plan:
            count = len(piece.requests)
            values, piece_samples = piece.finish(results[cursor : cursor + count])
            cursor += count
            for metric, items in values.items():
                per_unit.setdefault(unit, {}).setdefault(metric, []).extend(items)
            samples += [{"unit": unit, **s} for s in piece_samples]
        return self._aggregate(per_unit, samples)

    def _aggregate(self, per_unit: dict[str, dict[str, list[float]]], samples: list[dict]) -> TaskResult:
        names = list(dict.fromkeys(m for values in per_unit.values() for m in values))
        metrics: dict[str, MetricValue] = {}
        items: dict[str, list[float | None]] = {}
        unit_table: dict[str, dict[str, float]] = {unit: {} for unit in per_unit}
        nan_skipped: dict[str, int] = {}
        for name in names:
            scale, higher = metric_properties(name)
            unit_means, pooled = [], []
            for unit, values in per_unit.items():
                raw = values.get(name, [])
                kept = parts.finite(raw)
                if len(kept) < len(raw):
                    nan_skipped[name] = nan_skipped.get(name, 0) + len(raw) - len(kept)
                pooled += kept
                items.setdefault(name, []).extend(v if v is not None and math.isfinite(v) else None for v in raw)
                if kept:
                    unit_table[unit][name] = scale * sum(kept) / len(kept)
                    unit_means.append(unit_table[unit][name])
            metrics[name] = self._metric(name, unit_means, pooled, scale, higher, nan_skipped.get(name, 0))
        info: dict[str, Any] = {
            "mode": self.mode, "targets": self.targets, "parts": list(self.parts), "icu": self.icu,
            "nan_skipped": nan_skipped,
            "adversarial_types": {k: v.n for k, v in metrics.items() if k.startswith("forget_aa_")},
        }
        if "fluency" in self.parts:
            info["fluency_tokenizer"] = scoring.word_tokenizer()[1]
        if self.mode == "target":
            info["per_target"] = unit_table
        return TaskResult(metrics=metrics, items=items, samples=samples, info=info)

    def _metric(self, name: str, unit_means: list[float], pooled: list[float], scale: float,
                higher: bool | None, skipped: int = 0) -> MetricValue:
        if not unit_means:
            if skipped:  # items exist but none is finite (e.g. Min-K on texts shorter than 1/k tokens)
                return MetricValue.missing(f"all {skipped} {name} values are NaN or infinite (info.nan_skipped)",
                                           higher_is_better=higher)
            return MetricValue.missing(f"no {name} items for the selected targets", higher_is_better=higher)
        spread = unit_means if self.mode == "target" else [scale * v for v in pooled]
        k = len(spread)
        mean = sum(unit_means) / len(unit_means)
        centre = sum(spread) / k
        stderr = math.sqrt(sum((v - centre) ** 2 for v in spread) / (k - 1) / k) if k > 1 else None
        over = f"mean over {len(unit_means)} targets" if self.mode == "target" else "pooled over the batch"
        return MetricValue(mean, len(pooled), higher, stderr, variant=f"x{scale:g}, {over}")


class RwkuBatchTask(RwkuTask):
    name = "rwku_batch"
    mode = "batch"
    description = "RWKU batch-target setting: the probes of all selected targets pooled into one evaluation"
