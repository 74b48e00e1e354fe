"""The report schema, version 1, and its validation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1

REQUIRED_TOP_LEVEL = {
    "schema_version": int,
    "mu_eval_version": str,
    "created": str,
    "config": dict,
    "model": dict,
    "tasks": dict,
    "timings": dict,
    "versions": dict,
}
REQUIRED_MODEL = ("model", "revision", "weights_sha256", "dtype", "adapter", "backend")
REQUIRED_METRIC = ("value", "n", "higher_is_better")
FRAME_COLUMNS = ("task", "metric", "value", "stderr", "n", "higher_is_better", "reason", "model", "weights_sha256")


def items_checksum(items: Any) -> str:
    """SHA-256 of a task's per-item values in canonical JSON: written beside them (`items_sha256`) and checked
    when the report is read as a reference, so values edited after the run are not used unnoticed."""
    text = json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ReportError(ValueError):
    """A report file does not follow the schema; the message names the path within the report."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ReportError(message)


def validate_report(data: Any) -> None:
    """Raise ReportError at the first place where `data` departs from the schema."""
    _check(isinstance(data, dict), "report: expected a JSON object")
    for key, kind in REQUIRED_TOP_LEVEL.items():
        _check(key in data, f"report: missing {key!r}")
        _check(isinstance(data[key], kind), f"report.{key}: expected {kind.__name__}")
    _check(
        data["schema_version"] == SCHEMA_VERSION,
        f"report.schema_version: {data['schema_version']} is not supported (this mu-eval reads {SCHEMA_VERSION})",
    )
    for key in REQUIRED_MODEL:
        _check(key in data["model"], f"report.model: missing {key!r}")
    for task_name, task in data["tasks"].items():
        where = f"report.tasks.{task_name}"
        _check(isinstance(task, dict), f"{where}: expected an object")
        _check(isinstance(task.get("metrics"), dict), f"{where}.metrics: expected an object")
        _check(isinstance(task.get("items", {}), dict), f"{where}.items: expected an object")
        for metric_name, metric in task["metrics"].items():
            _validate_metric(metric, f"{where}.metrics.{metric_name}")
    for section in ("attacks", "method"):
        if data.get(section) is not None:
            _check(isinstance(data[section], dict), f"report.{section}: expected an object")
    if data.get("protocol") is not None:
        _validate_protocol(data["protocol"])


def _validate_protocol(protocol: Any) -> None:
    """The `protocol` section of a multi-step run: its name, options and one entry per evaluated step."""
    where = "report.protocol"
    _check(isinstance(protocol, dict), f"{where}: expected an object")
    _check(isinstance(protocol.get("name"), str), f"{where}.name: expected a string")
    _check(isinstance(protocol.get("options"), dict), f"{where}.options: expected an object")
    steps = protocol.get("steps")
    _check(isinstance(steps, list) and bool(steps), f"{where}.steps: expected a non-empty list")
    for index, step in enumerate(steps):
        at = f"{where}.steps[{index}]"
        _check(isinstance(step, dict), f"{at}: expected an object")
        for key in ("step", "forget_size"):
            _check(_is_int(step.get(key)), f"{at}.{key}: expected an integer")
        folds = step.get("folds")
        _check(isinstance(folds, list) and all(_is_int(f) for f in folds), f"{at}.folds: expected a list of integers")
        wall_time = step.get("wall_time_s")
        is_number = isinstance(wall_time, int | float) and not isinstance(wall_time, bool)
        _check(is_number, f"{at}.wall_time_s: expected a number")
        method = step.get("method")
        _check(method is None or isinstance(method, dict), f"{at}.method: expected an object or null")
        _check(isinstance(step.get("tasks"), dict), f"{at}.tasks: expected an object")
        for task_name, task in step["tasks"].items():
            _check(isinstance(task, dict) and isinstance(task.get("metrics"), dict),
                   f"{at}.tasks.{task_name}.metrics: expected an object")
            for metric_name, metric in task["metrics"].items():
                _validate_metric(metric, f"{at}.tasks.{task_name}.metrics.{metric_name}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_metric(metric: Any, where: str) -> None:
    _check(isinstance(metric, dict), f"{where}: expected an object")
    for key in REQUIRED_METRIC:
        _check(key in metric, f"{where}: missing {key!r}")
    value = metric["value"]
    _check(value is None or isinstance(value, int | float), f"{where}.value: expected a number or null")
    _check(isinstance(metric["n"], int), f"{where}.n: expected an integer")
    _check(metric["higher_is_better"] in (True, False, None), f"{where}.higher_is_better: expected a boolean or null")
    if value is None:
        _check(bool(metric.get("reason")), f"{where}: a null value needs a reason")


@dataclass(repr=False)
class Report:
    """A validated report, with the raw dictionary in `data`. `print(report)` shows the run's summary (the
    table the command prints), not the whole dictionary with its per-item arrays."""

    data: dict[str, Any]

    @property
    def tasks(self) -> dict[str, Any]:
        return self.data["tasks"]

    def metric(self, task: str, name: str) -> float | None:
        return self.data["tasks"][task]["metrics"][name]["value"]

    def items(self, task: str) -> dict[str, list]:
        return self.data["tasks"][task].get("items", {})

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __str__(self) -> str:
        from mu_eval.report.console import summary

        return summary(self)

    def __repr__(self) -> str:
        model = self.data.get("model", {})
        return (f"Report(model={model.get('model')!r}, sha256={(model.get('weights_sha256') or '')[:12]!r}, "
                f"tasks={list(self.data.get('tasks', {}))!r}, created={self.data.get('created')!r})")

    def rows(self) -> list[dict[str, Any]]:
        """One plain row per task metric: task, metric, value, stderr, n, higher_is_better, reason, and the
        model's name and weights hash (so rows of several reports can be stacked)."""
        model = self.data["model"]
        return [{"task": task, "metric": name, "value": metric["value"], "stderr": metric.get("stderr"),
                 "n": metric["n"], "higher_is_better": metric["higher_is_better"], "reason": metric.get("reason"),
                 "model": model.get("model"), "weights_sha256": model.get("weights_sha256")}
                for task, section in self.tasks.items() for name, metric in section["metrics"].items()]

    def to_frame(self) -> Any:
        """`rows()` as a pandas DataFrame (pandas is optional: `pip install 'mu-eval[plot]'`); stack several
        with `pandas.concat([load_report(p).to_frame().assign(run=p) for p in paths])`."""
        try:
            import pandas
        except ImportError:
            raise ImportError("Report.to_frame needs pandas: pip install 'mu-eval[plot]' (or pandas)") from None
        return pandas.DataFrame(self.rows(), columns=list(FRAME_COLUMNS))
