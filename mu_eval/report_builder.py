"""Assembles the report dictionary from a run's configuration, model identity and task results."""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import platform
from typing import Any

from mu_eval.report.schema import SCHEMA_VERSION, items_checksum
from mu_eval.task import Task, TaskResult

TRACKED_LIBRARIES = ("mu-eval", "torch", "transformers", "datasets", "peft", "tokenizers", "rouge-score", "scipy",
                     "scikit-learn", "vllm")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def json_safe(value: Any) -> Any:
    """Non-finite floats become null (JSON has no NaN), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def task_section(task: Task, result: TaskResult) -> dict[str, Any]:
    items = json_safe(result.items)
    return {
        "config": json_safe(task.config()),
        "metrics": {name: value.to_json() for name, value in result.metrics.items()},
        "items": items,
        "items_sha256": items_checksum(items),
        "info": json_safe(result.info),
    }


def build_report(
    *,
    config: dict[str, Any],
    identity: dict[str, Any],
    tasks: dict[str, Task],
    results: dict[str, TaskResult],
    attacks: dict[str, Any] | None = None,
    method: dict[str, Any] | None = None,
    timings: dict[str, float],
    engine_stats: dict[str, Any] | None = None,
) -> dict[str, Any]:
    versions = library_versions()
    return {
        "schema_version": SCHEMA_VERSION,
        "mu_eval_version": versions.get("mu-eval") or "unknown",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "model": identity,
        "method": method,
        "tasks": {name: task_section(tasks[name], results[name]) for name in tasks},
        "attacks": json_safe(attacks or {}),
        "timings": timings,
        "engine": engine_stats or {},
        "versions": versions,
    }
