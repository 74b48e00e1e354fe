"""Several reports side by side: which files to read, which metrics to show, and the table in the terminal,
Markdown, LaTeX or CSV (the CSV is long: one row per run and metric, ready for a spreadsheet or pandas)."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mu_eval.options import closest
from mu_eval.report.console import DIRECTION, format_number, table
from mu_eval.report.io import REPORT_NAME, load_report
from mu_eval.report.schema import Report, ReportError

FORMATS = ("terminal", "markdown", "latex", "csv")


@dataclass(frozen=True)
class Run:
    """One report and the short label that names it in tables and plots."""

    label: str
    path: Path
    report: Report


def _natural(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def report_files(source: str | os.PathLike) -> list[Path]:
    """A report file, or every report in a folder and its immediate subfolders (a sweep's layout): earlier
    runs kept as `report_<created>.json` first, then the newest, `report.json`."""
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ReportError(f"report not found: {path}")

    def in_folder(folder: Path) -> list[Path]:
        kept = sorted(folder.glob("report_*.json"))
        return kept + ([folder / REPORT_NAME] if (folder / REPORT_NAME).is_file() else [])

    found = in_folder(path)
    for sub in sorted((p for p in path.iterdir() if p.is_dir()), key=lambda p: _natural(p.name)):
        found += in_folder(sub)
    if not found:
        raise ReportError(f"no report.json or report_*.json in {path} or its subfolders")
    return found


def _labels(paths: list[Path]) -> list[str]:
    """The shortest distinct names: the folder, with the file name when a folder holds several reports."""
    parent = Path(os.path.commonpath([p.parent.resolve() for p in paths])) if len(paths) > 1 else None
    labels = []
    for path in paths:
        folder = path.parent.resolve()
        base = str(folder.relative_to(parent)) if parent is not None and folder != parent else folder.name
        stem = "" if path.name == REPORT_NAME else path.stem.removeprefix("report_")
        labels.append("/".join(part for part in (base if base != "." else "", stem) if part) or path.stem)
    if len(set(labels)) < len(labels):
        return [str(path) for path in paths]
    return labels


def load_runs(sources: Iterable[str | os.PathLike], labels: Sequence[str] | None = None) -> list[Run]:
    """The reports named by `sources` (files or folders), validated, each with a label."""
    paths = [path for source in sources for path in report_files(source)]
    if not paths:
        raise ReportError("no reports given")
    names = list(labels) if labels else _labels(paths)
    if len(names) != len(paths):
        raise ReportError(f"{len(names)} labels for {len(paths)} reports")
    return [Run(name, path, load_report(path)) for name, path in zip(names, paths)]


def metric_keys(runs: Sequence[Run], wanted: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(task, metric) pairs to show: every one any run has, or those `wanted` names (`task/metric`, or a
    metric name for every task that has it); a name no run has is an error naming the closest."""
    every = list(dict.fromkeys((task, metric) for run in runs for task, section in run.report.tasks.items()
                               for metric in section["metrics"]))
    if not wanted:
        return every
    chosen: list[tuple[str, str]] = []
    for name in wanted:
        task, _, metric = name.rpartition("/")
        matches = [key for key in every if key[1] == metric and (not task or key[0] == task)]
        if not matches:
            guess = closest(name, [f"{t}/{m}" for t, m in every] + [m for _, m in every])
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise ReportError(f"no report has the metric {name!r}{hint}")
        chosen.extend(key for key in matches if key not in chosen)
    return chosen


def cell(run: Run, key: tuple[str, str]) -> dict[str, Any] | None:
    return run.report.tasks.get(key[0], {}).get("metrics", {}).get(key[1])


def _text(metric: dict[str, Any] | None, plus_minus: str) -> str:
    if metric is None:
        return ""
    text = format_number(metric["value"])
    if metric["value"] is not None and metric.get("stderr") is not None:
        text += f"{plus_minus}{format_number(metric['stderr'])}"
    return text


def _direction(runs: Sequence[Run], key: tuple[str, str]) -> str:
    found = [m["higher_is_better"] for m in (cell(run, key) for run in runs) if m is not None]
    return DIRECTION[found[0]] if found else "-"


def render(runs: Sequence[Run], keys: Sequence[tuple[str, str]], fmt: str = "terminal") -> str:
    """The comparison: one row per metric, one column per run (value ± stderr); CSV one row per run and metric."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "csv":
        return _csv(runs, keys)
    if fmt == "latex":
        return _latex(runs, keys)
    heading = ["task", "metric", "better", *(run.label for run in runs)]
    rows = [[task, metric, _direction(runs, (task, metric)), *(_text(cell(run, (task, metric)), " ± ")
                                                               for run in runs)] for task, metric in keys]
    if fmt == "markdown":
        lines = ["| " + " | ".join(heading) + " |", "|" + "---|" * 3 + "---:|" * len(runs)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n" + _legend(runs, markdown=True)
    return table([heading, *rows], right=tuple(range(3, 3 + len(runs)))) + "\n\n" + _legend(runs)


def _legend(runs: Sequence[Run], markdown: bool = False) -> str:
    """What each column's model was: a table alone does not say which weights or settings it compares."""
    lines = []
    for run in runs:
        model, config = run.report["model"], run.report["config"]
        template = "on" if config.get("use_chat_template") else "off"
        line = (f"{run.label}: {model.get('model')} (sha256 {(model.get('weights_sha256') or '-')[:12]}, "
                f"{model.get('dtype')}, chat template {template}) {run.path}")
        lines.append(f"- {line}" if markdown else line)
    return "\n".join(lines)


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(char, char) for char in text)


def _latex(runs: Sequence[Run], keys: Sequence[tuple[str, str]]) -> str:
    """A booktabs tabular: values in math mode with their standard errors."""
    lines = [r"\begin{tabular}{ll" + "r" * len(runs) + "}", r"\toprule",
             " & ".join(["task", "metric", *(latex_escape(run.label) for run in runs)]) + r" \\", r"\midrule"]
    for task, metric in keys:
        arrow = {"higher": r" $\uparrow$", "lower": r" $\downarrow$"}.get(_direction(runs, (task, metric)), "")
        cells = []
        for run in runs:
            text = _text(cell(run, (task, metric)), r" \pm ")
            cells.append(f"${text}$" if text and text != "null" else text)
        lines.append(" & ".join([latex_escape(task), latex_escape(metric) + arrow, *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


CSV_COLUMNS = ("run", "task", "metric", "value", "stderr", "n", "higher_is_better", "reason", "model",
               "weights_sha256", "report")


def _csv(runs: Sequence[Run], keys: Sequence[tuple[str, str]]) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for run in runs:
        for task, metric in keys:
            found = cell(run, (task, metric))
            if found is None:
                continue
            writer.writerow([run.label, task, metric, _raw(found["value"]), _raw(found.get("stderr")), found["n"],
                             _raw(found["higher_is_better"]), found.get("reason") or "", run.report["model"]["model"],
                             run.report["model"].get("weights_sha256") or "", str(run.path)])
    return stream.getvalue()


def _raw(value: Any) -> str:
    """Full precision for a CSV (repr of a float round-trips); empty for null."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)
