"""What every reader of published logs shares: the error type, index-keyed arrays, and the report shape.

A published log becomes a report of schema version 1 whose tasks hold the per-item arrays a mu-eval run of
the same task would store (`items`), so a task reads it through `--reference` exactly as it reads another
run's report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mu_eval.report import SCHEMA_VERSION, ReportError

#: TOFU forget-set sizes -> task: forget01 has 40 questions, forget05 200, forget10 400 (300 in the logs of
#: TOFU's own code, which evaluated the first 300 only).
TOFU_TASK_BY_SIZE: dict[int, str] = {40: "tofu_forget01", 200: "tofu_forget05", 300: "tofu_forget10",
                                     400: "tofu_forget10"}


class ReferenceError(ReportError):
    """A reference cannot be read or used; the message names the file and what is wrong."""


def read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as stream:
            return json.load(stream)
    except FileNotFoundError:
        raise ReferenceError(f"reference not found: {path}") from None
    except json.JSONDecodeError as error:
        raise ReferenceError(f"reference is not valid JSON: {path}: {error}") from None
    except UnicodeDecodeError as error:
        raise ReferenceError(f"reference is not UTF-8 text: {path}: {error.reason} at byte {error.start}") from None
    except IsADirectoryError:
        raise ReferenceError(f"reference is a folder without a report or logs: {path}") from None


def by_index(mapping: Any, where: str, value: Callable[[Any], Any] = lambda v: v) -> list[Any]:
    """`{"0": x0, "1": x1, ...}` as [value(x0), value(x1), ...] in numeric key order ("10" after "9")."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise ReferenceError(f"{where}: expected an object keyed by item index")
    try:
        keys = sorted(mapping, key=int)
    except ValueError:
        raise ReferenceError(f"{where}: item keys must be integers, got {sorted(mapping)[:3]}") from None
    if [int(k) for k in keys] != list(range(len(keys))):
        raise ReferenceError(f"{where}: item indices must be 0..{len(keys) - 1} without gaps")
    try:
        return [value(mapping[k]) for k in keys]
    except (KeyError, TypeError, ValueError) as error:
        raise ReferenceError(f"{where}: unexpected item value ({type(error).__name__}: {error})") from None


def finite_or_none(value: float) -> float | None:
    """Reports hold strict JSON: a non-finite per-item value is stored as null (tasks drop nulls)."""
    value = float(value)
    return value if math.isfinite(value) else None


def tofu_task_for(size: int, where: str) -> str:
    try:
        return TOFU_TASK_BY_SIZE[size]
    except KeyError:
        raise ReferenceError(
            f"{where}: {size} forget items match no TOFU split (40, 200, 300 or 400); name the task: "
            "--reference tofu_forgetXX=PATH"
        ) from None


def published_report(source: Path, log_format: str, model: str, tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A report (schema version 1) holding published per-item values; metrics are left to the tasks."""
    return {
        "schema_version": SCHEMA_VERSION,
        "mu_eval_version": "published-logs",
        "created": datetime.now(timezone.utc).isoformat(),
        "config": {"reference_source": str(source), "reference_format": log_format},
        "model": {"model": model, "revision": None, "weights_sha256": None, "dtype": None, "adapter": None,
                  "backend": f"published-logs ({log_format})"},
        "tasks": {name: {"config": {"name": name}, "metrics": {}, "items": section["items"],
                         "info": section.get("info", {})}
                  for name, section in tasks.items()},
        "timings": {},
        "versions": {},
    }
