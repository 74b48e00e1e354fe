"""Many checkpoints in one process: `mu-eval --model 'run/checkpoint-*'` (a glob, or a comma-separated list)
evaluates each checkpoint in turn, writes one report each and a summary, and reads the task data and the
reference once for all of them. To spread the checkpoints over a cluster instead, run one checkpoint per job
and merge the reports afterwards (docs/scaling.md)."""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mu_eval.api import evaluate
from mu_eval.data import remember_rows
from mu_eval.distributed import current_processes
from mu_eval.options import OptionError
from mu_eval.references import describe_references, resolve_references
from mu_eval.report import Report

SUMMARY_NAME = "sweep.json"


class SweepError(OptionError):
    """A `--model` list or glob that names no checkpoint, names one twice, or a sweep option that cannot work."""


def natural_key(text: str) -> list[Any]:
    """Sort key that puts checkpoint-900 before checkpoint-1000."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def expand_models(text: str) -> list[str]:
    """The models `--model` names: comma-separated items, each a path, a hub id, or a glob of checkpoint
    folders (sorted by the numbers in their names)."""
    models: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not glob.has_magic(item):
            models.append(item)
            continue
        found = sorted((path for path in glob.glob(os.path.expanduser(item)) if Path(path).is_dir()), key=natural_key)
        if not found:
            raise SweepError(f"--model {item!r} matches no checkpoint folder")
        models += found
    if not models:
        raise SweepError("--model names no model")
    repeated = sorted({model for model in models if models.count(model) > 1})
    if repeated:
        raise SweepError(f"--model names {', '.join(repeated)} more than once")
    return models


def short_names(models: list[str]) -> dict[str, str]:
    """A folder name per model: the last part of its path, or as many trailing parts as make names unique."""
    parts = {model: Path(model).expanduser().parts or (model,) for model in models}
    for depth in range(1, max(len(p) for p in parts.values()) + 1):
        names = {model: "--".join(p[-depth:]) for model, p in parts.items()}
        if len(set(names.values())) == len(names):
            return names
    return {model: f"{index:03d}" for index, model in enumerate(models)}


@dataclass
class SweepResult:
    """The report of every checkpoint, in sweep order, and the summary written beside them."""

    reports: dict[str, Report]
    summary: dict[str, Any] = field(default_factory=dict)


def evaluate_checkpoints(
    models: list[str],
    tasks: list[str],
    *,
    output_path: str | os.PathLike | None = None,
    save_model: str | os.PathLike | None = None,
    reference: Any = None,
    extra_config: dict[str, Any] | None = None,
    **options: Any,
) -> SweepResult:
    """`mu_eval.evaluate` on each model with the same tasks and options. Reports go to
    `output_path/<checkpoint name>/`, the summary to `output_path/sweep.json`; an unlearned model (with a
    method) to `save_model/<checkpoint name>/`."""
    for name, value in (("output_path", output_path), ("save_model", save_model)):
        if value is not None and Path(value).suffix == ".json":
            raise SweepError(f"{name} must be a folder when several checkpoints are evaluated, got {value}")
    names = short_names(models)
    resolved = resolve_references(reference)  # read once, recorded as given
    config = {**(extra_config or {}), "reference": describe_references(reference)}
    reports: dict[str, Report] = {}
    with remember_rows():
        for model in models:
            reports[model] = evaluate(
                model, tasks, reference=resolved, extra_config=config,
                output_path=Path(output_path) / names[model] if output_path is not None else None,
                save_model=Path(save_model) / names[model] if save_model is not None else None, **options,
            )
    summary = sweep_summary(reports, names, output_path)
    processes = current_processes() if options.get("data_parallel") else None
    if output_path is not None and (processes is None or processes.is_main):
        target = Path(output_path) / SUMMARY_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(summary, indent=2, allow_nan=False), encoding="utf-8")
        temporary.replace(target)
    return SweepResult(reports, summary)


def sweep_summary(reports: dict[str, Report], names: dict[str, str], output_path: Any) -> dict[str, Any]:
    """One row per checkpoint: where its report is, its weights hash, and every task metric's value."""
    rows = []
    for model, report in reports.items():
        folder = names[model]
        rows.append({
            "model": model,
            "report": f"{folder}/report.json" if output_path is not None else None,
            "weights_sha256": report.data["model"].get("weights_sha256"),
            "metrics": {f"{task}/{metric}": section["value"]
                        for task, data in report.tasks.items() for metric, section in data["metrics"].items()},
        })
    return {"checkpoints": rows}


def summary_table(summary: dict[str, Any]) -> str:
    """The summary as text: one line per checkpoint, one column per task metric."""
    rows = summary["checkpoints"]
    columns = list(dict.fromkeys(key for row in rows for key in row["metrics"]))
    table = [["model", "weights", *columns]]
    for row in rows:
        values = [row["metrics"].get(column) for column in columns]
        table.append([row["model"], (row["weights_sha256"] or "-")[:12],
                      *("null" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in values)])
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table)
