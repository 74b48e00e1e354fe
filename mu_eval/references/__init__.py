"""References for forget quality and privleak: mu-eval reports and published logs, one or several per run.

`--reference` takes a mu-eval report (file or folder), a folder of TOFU's published evaluation logs (or its
`eval_log_forget.json`), or an open-unlearning log (`TOFU_EVAL.json`, `MUSE_EVAL.json`, or their folder);
the format is detected from the files. `TASK=PATH` gives the reference of one task only (several may be
given, one per task: forget01, forget05 and forget10 each against its own retain model).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mu_eval.references import open_unlearning, tofu_logs
from mu_eval.references.published import ReferenceError, read_json
from mu_eval.report import Report, ReportError, validate_report
from mu_eval.report.io import REPORT_NAME
from mu_eval.report.schema import items_checksum

__all__ = ["ReferenceError", "describe_references", "load_reference", "resolve_references", "same_weights"]

ReferenceInput = str | os.PathLike | Report | dict
TASK_PREFIX = re.compile(r"^(?P<task>[A-Za-z0-9_.\-]+)=(?P<path>.+)$")


def split_spec(spec: str | os.PathLike) -> tuple[str | None, Path]:
    """`TASK=PATH` -> (TASK, PATH); a plain path -> (None, PATH). An existing path is never split."""
    text = os.fspath(spec)
    match = TASK_PREFIX.match(text)
    if match and not Path(text).exists():
        return match["task"], Path(match["path"]).expanduser()
    return None, Path(text).expanduser()


def _one_task(data: dict[str, Any], task: str, source: str) -> dict[str, Any]:
    if task not in data["tasks"]:
        raise ReferenceError(f"reference {source} has no task {task!r} (it has {', '.join(data['tasks']) or 'none'})")
    return {**data, "tasks": {task: data["tasks"][task]}}


def load_reference(spec: str | os.PathLike) -> dict[str, Any]:
    """Read one reference, whatever its format, as a report dictionary (see the module docstring)."""
    task, path = split_spec(spec)
    if path.is_dir():
        if (path / REPORT_NAME).is_file():
            data = _report(path / REPORT_NAME)
        elif tofu_logs.is_folder(path):
            return tofu_logs.read_folder(path, task)
        elif (log := open_unlearning.log_in(path)) is not None:
            return open_unlearning.load(log, task)
        else:
            raise ReferenceError(f"reference folder {path} holds no {REPORT_NAME}, no TOFU evaluation logs "
                                 f"({tofu_logs.FILES['forget']}) and no open-unlearning log "
                                 f"({open_unlearning.TOFU_FILE}, {open_unlearning.MUSE_FILE})")
    else:
        raw = read_json(path)
        if isinstance(raw, dict) and "schema_version" in raw:
            data = _report(path, raw)
        elif tofu_logs.is_log(raw):
            return tofu_logs.read_file(path, raw, task)
        elif open_unlearning.is_log(raw):
            return open_unlearning.read(path, raw, task)
        else:
            raise ReferenceError(f"reference {path} is not a mu-eval report, a TOFU evaluation log or an "
                                 "open-unlearning log")
    return _one_task(data, task, str(spec)) if task else data


def _report(path: Path, raw: Any = None) -> dict[str, Any]:
    data = read_json(path) if raw is None else raw
    try:
        validate_report(data)
        for task, section in data["tasks"].items():
            check_items(section.get("items", {}), f"report.tasks.{task}.items")
            check_items_checksum(section, task)
    except ReportError as error:
        raise ReferenceError(f"reference {path}: {error}") from None
    return data


def check_items_checksum(section: dict[str, Any], task: str) -> None:
    """A report written since items carry their checksum must still match it: edited items are refused. (An
    older report has no checksum and is read as it is.)"""
    expected = section.get("items_sha256")
    if expected is None:
        return
    try:
        actual = items_checksum(section.get("items", {}))
    except ValueError as error:  # NaN or infinity, which no report writes
        raise ReportError(f"report.tasks.{task}.items: {error}") from None
    if actual != expected:
        raise ReportError(f"report.tasks.{task}.items do not match their checksum (items_sha256): they were changed "
                          "after the run wrote them; refusing to compare against edited values")


def _is_item(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return depth < 2 and isinstance(value, list) and all(_is_item(entry, depth + 1) for entry in value)


def check_items(items: Any, where: str) -> None:
    """Per-item values are lists (one entry per item: a number, null, a label, or a short list of them); a
    reference whose items are anything else would be read as numbers it does not hold."""
    for name, values in items.items():
        if not isinstance(values, list):
            raise ReportError(f"{where}.{name}: expected a list of per-item values, got {type(values).__name__}")
        for index, value in enumerate(values):
            if not _is_item(value):
                raise ReportError(f"{where}.{name}[{index}]: expected a number, null or a list of them, got "
                                  f"{type(value).__name__}")


def _as_data(item: ReferenceInput) -> tuple[dict[str, Any], str]:
    if isinstance(item, Report):
        return item.data, "report object"
    if isinstance(item, dict):
        return item, "report dictionary"
    return load_reference(item), os.fspath(item)


def resolve_references(value: ReferenceInput | Sequence[ReferenceInput] | None) -> dict[str, Any] | None:
    """One reference dictionary for the run's tasks: a single reference as it is, several merged by task.

    Two references for one task are an error naming both. The merged dictionary lists its parts under
    `sources` (what each gave, and the weights hash of its model when known).
    """
    if value is None:
        return None
    items: list[ReferenceInput] = list(value) if isinstance(value, list | tuple) else [value]  # type: ignore[list-item]
    if not items:
        return None
    loaded = [_as_data(item) for item in items]
    if len(loaded) == 1:
        data, source = loaded[0]
        return {**data, "sources": data.get("sources") or [_source(data, source)]}
    merged: dict[str, Any] = {"tasks": {}, "attacks": {}, "sources": []}
    origin: dict[str, str] = {}
    for data, source in loaded:
        for task, section in data.get("tasks", {}).items():
            if task in merged["tasks"]:
                raise ReferenceError(f"two references give task {task!r}: {origin[task]} and {source}; give each "
                                     "task one reference (TASK=PATH keeps one task of a report)")
            merged["tasks"][task], origin[task] = section, source
        for attack, section in (data.get("attacks") or {}).items():
            if not isinstance(section, dict):
                continue
            target = merged["attacks"].setdefault(attack, {**section, "tasks": {}})
            target["tasks"].update(section.get("tasks") or {})
        merged["sources"].append(_source(data, source))
    return merged


def _source(data: dict[str, Any], source: str) -> dict[str, Any]:
    model = data.get("model") or {}
    return {"source": source, "tasks": sorted(data.get("tasks", {})), "model": model.get("model"),
            "weights_sha256": model.get("weights_sha256"),
            "format": (data.get("config") or {}).get("reference_format", "mu-eval report")}


def describe_references(value: Any) -> list[str] | str | None:
    """What the report's `config.reference` records: the path (or paths) given, None for in-memory ones."""
    if isinstance(value, list | tuple):
        described = [os.fspath(v) for v in value if isinstance(v, str | os.PathLike)]
        return described or None
    return os.fspath(value) if isinstance(value, str | os.PathLike) else None


def same_weights(reference: dict[str, Any] | None, identity: dict[str, Any]) -> list[str]:
    """The references whose model has the evaluated model's weights hash (a model compared with itself)."""
    ours = identity.get("weights_sha256")
    if not reference or not ours:
        return []
    return [source["source"] for source in reference.get("sources", []) if source.get("weights_sha256") == ours]
