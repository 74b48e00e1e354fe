"""The only code that touches the output folder: atomic report writes, samples files, report reads.

A report is never overwritten: when the output folder already holds a `report.json` from an earlier run,
that report is first renamed to `report_<its creation time>.json` (its samples files likewise), so the
newest run is always `report.json` and every earlier one stays beside it.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import jsonlines

from mu_eval.report.schema import Report, ReportError, validate_report

REPORT_NAME = "report.json"


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~current_umask())  # mkstemp's 0600 is for the temporary file only
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def report_path(output_path: str | os.PathLike) -> Path:
    """Where a report for `output_path` (a folder, or a path ending in .json) is written."""
    target = Path(output_path)
    return target if target.suffix == ".json" else target / REPORT_NAME


def _stamp(path: Path) -> str:
    """The earlier report's creation time as a file-name part (its file time when unreadable)."""
    try:
        created = json.loads(path.read_text(encoding="utf-8")).get("created")
        moment = datetime.datetime.fromisoformat(str(created))
    except (OSError, ValueError, AttributeError, TypeError):
        moment = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)
    return re.sub(r"[^0-9T]+", "-", moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))


def _keep_previous(path: Path) -> Path | None:
    """Rename an existing report at `path` (and the samples files of its tasks) to a timestamped name."""
    if not path.exists():
        return None
    stamp = _stamp(path)
    try:
        old_tasks = list(json.loads(path.read_text(encoding="utf-8")).get("tasks", {}))
    except (OSError, ValueError, AttributeError):
        old_tasks = []
    suffix, counter = stamp, 1
    while (path.parent / f"{path.stem}_{suffix}{path.suffix}").exists():
        counter += 1
        suffix = f"{stamp}-{counter}"
    kept = path.parent / f"{path.stem}_{suffix}{path.suffix}"
    os.replace(path, kept)
    for task_name in old_tasks:
        sample_path = path.parent / f"samples_{task_name}.jsonl"
        if sample_path.exists():
            os.replace(sample_path, path.parent / f"samples_{task_name}_{suffix}.jsonl")
    return kept


def write_report(
    data: dict[str, Any],
    output_path: str | os.PathLike,
    samples: dict[str, list[dict]] | None = None,
    replace: bool = False,
) -> Path:
    """Validate and write `data` to `output_path` (a folder, or a path ending in .json), atomically.

    Samples go to `samples_<task>.jsonl` beside the report, each written atomically too. An earlier report
    there is kept under a timestamped name (see the module docstring) unless `replace` is set, which is
    for a run rewriting the report it wrote itself a moment before.
    """
    validate_report(data)
    text = json.dumps(data, indent=2, allow_nan=False)  # fails here, before an earlier report is moved
    path = report_path(output_path)
    try:
        if not replace:
            _keep_previous(path)
        for task_name, rows in (samples or {}).items():
            sample_path = path.parent / f"samples_{task_name}.jsonl"
            _atomic_write(sample_path, lambda stream, rows=rows: jsonlines.Writer(stream).write_all(rows))
        _atomic_write(path, lambda stream: stream.write(text))
    except OSError as error:  # the folder went away, filled up or turned read-only during the run
        raise ReportError(_rescue(text, path, error)) from None
    return path


def _rescue(text: str, path: Path, error: OSError) -> str:
    """Write the report to the temporary folder instead, so that the run's work is not lost; the message."""
    reason = error.strerror or str(error)
    rescue = Path(tempfile.gettempdir()) / f"mu-eval-report-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.json"
    try:
        _atomic_write(rescue, lambda stream: stream.write(text))
    except OSError:
        return f"cannot write the report to {path} ({reason}), nor to {rescue}"
    return f"cannot write the report to {path} ({reason}); it was saved to {rescue} instead"


def load_report(path: str | os.PathLike) -> Report:
    """Read and validate a report (a report.json or the folder that holds one)."""
    source = Path(path)
    if source.is_dir():
        source = source / REPORT_NAME
    try:
        with source.open(encoding="utf-8") as stream:
            data = json.load(stream)
    except FileNotFoundError:
        raise ReportError(f"report not found: {source}") from None
    except json.JSONDecodeError as error:
        raise ReportError(f"report is not valid JSON: {source}: {error}") from None
    validate_report(data)
    return Report(data)
