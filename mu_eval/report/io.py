"""The only code that touches the output folder: atomic report writes, samples files, report reads."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jsonlines

from mu_eval.report.schema import Report, ReportError, validate_report

REPORT_NAME = "report.json"


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_report(
    data: dict[str, Any], output_path: str | os.PathLike, samples: dict[str, list[dict]] | None = None
) -> Path:
    """Validate and write `data` to `output_path` (a folder, or a path ending in .json), atomically.

    Samples go to `samples_<task>.jsonl` beside the report, each written atomically too.
    """
    validate_report(data)
    target = Path(output_path)
    path = target if target.suffix == ".json" else target / REPORT_NAME
    for task_name, rows in (samples or {}).items():
        sample_path = path.parent / f"samples_{task_name}.jsonl"
        _atomic_write(sample_path, lambda stream, rows=rows: jsonlines.Writer(stream).write_all(rows))
    _atomic_write(path, lambda stream: json.dump(data, stream, indent=2, allow_nan=False))
    return path


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
