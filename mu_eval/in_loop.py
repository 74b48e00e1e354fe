"""Evaluation inside a training loop: the same tasks and settings at every checkpoint, one report per step under
one folder, the metrics handed to the loop's logger, and the best checkpoint by a chosen metric among those
that keep a utility floor. The Trainer callback (`mu_eval.integrations.transformers`) is built on this."""

from __future__ import annotations

import inspect
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mu_eval.api import evaluate
from mu_eval.report import Report
from mu_eval.task import Task

#: evaluate()'s arguments that the evaluator sets itself, per checkpoint.
OWN_ARGUMENTS = ("model", "tasks", "tokenizer", "step", "tag", "output_path", "reference")


@dataclass(frozen=True)
class Selection:
    """Which checkpoint is best: `metric` ("task/metric", or the bare name when one task reports it), highest
    or lowest (`mode` "max"/"min"; default the metric's own direction), among the checkpoints whose every
    `floors` metric is at least its floor (e.g. {"tofu_forget10/model_utility": 0.5}). A checkpoint whose
    metric or a floor metric is null is never chosen."""

    metric: str
    mode: str | None = None
    floors: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in (None, "max", "min"):
            raise ValueError(f"selection mode must be 'max', 'min' or None, got {self.mode!r}")


@dataclass
class Checkpoint:
    """One evaluation of the loop: its step, tag, report file (when written), the checkpoint folder the loop
    saved at that step (when it said so) and flat metric values."""

    step: int
    tag: str | None
    report_path: str | None
    metrics: dict[str, float | None]
    checkpoint: str | None = None
    directions: dict[str, bool | None] = field(repr=False, default_factory=dict)


def flat_metrics(report: Report) -> tuple[dict[str, float | None], dict[str, bool | None]]:
    """`{"task/metric": value}` for every task metric, and each metric's `higher_is_better`."""
    values: dict[str, float | None] = {}
    directions: dict[str, bool | None] = {}
    for task_name, task in report.tasks.items():
        for name, metric in task["metrics"].items():
            values[f"{task_name}/{name}"] = metric["value"]
            directions[f"{task_name}/{name}"] = metric["higher_is_better"]
    return values, directions


def resolve_metric(name: str, values: Mapping[str, Any]) -> str:
    """The full "task/metric" key for `name`; a bare name must belong to exactly one task."""
    if name in values:
        return name
    matches = [key for key in values if key.split("/", 1)[1] == name]
    if len(matches) != 1:
        known = ", ".join(sorted(values)) or "none"
        why = "several tasks report it" if matches else "no task reports it"
        raise ValueError(f"selection metric {name!r}: {why}; name it as task/metric (known: {known})")
    return matches[0]


def choose_best(checkpoints: Sequence[Checkpoint], selection: Selection) -> Checkpoint | None:
    """The best checkpoint under `selection` (the earliest on a tie), or None when none qualifies."""
    best: Checkpoint | None = None
    best_value = math.nan
    for checkpoint in checkpoints:
        key = resolve_metric(selection.metric, checkpoint.metrics)
        value = checkpoint.metrics[key]
        if value is None or not math.isfinite(value):
            continue
        floors = {resolve_metric(name, checkpoint.metrics): floor for name, floor in selection.floors.items()}
        if any(checkpoint.metrics[name] is None or checkpoint.metrics[name] < floor  # type: ignore[operator]
               for name, floor in floors.items()):
            continue
        mode = selection.mode or ("min" if checkpoint.directions.get(key) is False else "max")
        if best is None or (value > best_value if mode == "max" else value < best_value):
            best, best_value = checkpoint, value
    return best


class InLoopEvaluator:
    """Evaluate a model at chosen steps of a training loop, the same way every time.

    `evaluator(model, tokenizer, step=step)` runs `mu_eval.evaluate` with this evaluator's tasks and options
    (e.g. `limit`, `subset_seed`, `generate=False` for a fast run), writes the report to
    `output_dir/step-<step>/report.json`, hands `{prefix + "task/metric": value}` to `log(metrics, step)`
    when given, and with `select` keeps `best` up to date in `output_dir/best.json`. The loop's random
    generators and the model's modes and flags are left as they were (see `mu_eval.evaluate`).

    `reference_model` (a path or a `(model, tokenizer)` pair, e.g. the retain model) is evaluated once, at the
    first call, with the same options, so forget quality and privleak compare the same items; or pass a
    ready `reference` (a report computed with the same options, or its path).
    """

    def __init__(
        self,
        tasks: Sequence[str | Task],
        *,
        output_dir: str | os.PathLike | None = None,
        select: Selection | None = None,
        log: Callable[[dict[str, float], int], None] | None = None,
        prefix: str = "eval/",
        reference: Any = None,
        reference_model: Any = None,
        **evaluate_options: Any,
    ) -> None:
        accepted = set(inspect.signature(evaluate).parameters) - set(OWN_ARGUMENTS)
        unknown = sorted(set(evaluate_options) - accepted)
        if unknown:
            raise TypeError(f"unknown evaluate option(s) {', '.join(map(repr, unknown))}; "
                            f"accepted: {', '.join(sorted(accepted))}")
        if reference is not None and reference_model is not None:
            raise ValueError("give reference (a report) or reference_model (evaluated once), not both")
        self.tasks = list(tasks)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.select = select
        self.log = log
        self.prefix = prefix
        self.reference = reference
        self.reference_model = reference_model
        self.options = {"progress": False, **evaluate_options}
        self.history: list[Checkpoint] = []
        self.best: Checkpoint | None = None

    def reference_report(self) -> Any:
        """The reference for every checkpoint: given, or the reference model's report (evaluated once)."""
        if self.reference is None and self.reference_model is not None:
            path = self.output_dir / "reference" if self.output_dir is not None else None
            model = self.reference_model
            self.reference = evaluate(model, self.tasks, output_path=path, tag="reference", **self.options).data
            self.reference_model = None
        return self.reference

    def __call__(self, model: Any, tokenizer: Any = None, *, step: int, tag: str | None = None,
                 checkpoint: str | os.PathLike | None = None) -> Report:
        """Evaluate `model` (an in-memory model with `tokenizer`, a `(model, tokenizer)` pair or a checkpoint
        path) as the checkpoint of `step`; returns its report. `checkpoint`: where the loop saved these
        weights, recorded in `best.json` when they are the best."""
        reference = self.reference_report()
        path = self.output_dir / f"step-{step}" if self.output_dir is not None else None
        if tokenizer is not None and not isinstance(model, tuple):
            model = (model, tokenizer)
        report = evaluate(model, self.tasks, step=step, tag=tag, output_path=path, reference=reference,
                          **self.options)
        values, directions = flat_metrics(report)
        report_path = str(path / "report.json") if path is not None else None
        saved = str(checkpoint) if checkpoint is not None else None
        self.history.append(Checkpoint(step, tag, report_path, values, saved, directions))
        if self.select is not None:
            self.best = choose_best(self.history, self.select)
            self.write_best()
        if self.log is not None:
            self.log(self.logged(values), step)
        return report

    def logged(self, values: Mapping[str, float | None]) -> dict[str, float]:
        """What goes to a logger: every metric with a value, under `prefix` (nulls are left out: loggers
        plot numbers)."""
        return {f"{self.prefix}{name}": value for name, value in values.items() if value is not None}

    def write_best(self) -> None:
        """`output_dir/best.json`: the selection and the best checkpoint so far (null when none qualifies)."""
        if self.output_dir is None or self.select is None:
            return
        best = None
        if self.best is not None:
            key = resolve_metric(self.select.metric, self.best.metrics)
            best = {"step": self.best.step, "tag": self.best.tag, "report": self.best.report_path,
                    "checkpoint": self.best.checkpoint, "value": self.best.metrics[key]}
        data = {"selection": {**asdict(self.select), "floors": dict(self.select.floors)}, "best": best,
                "evaluated_steps": [checkpoint.step for checkpoint in self.history]}
        self.output_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.output_dir / "best.json.tmp"
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.output_dir / "best.json")
