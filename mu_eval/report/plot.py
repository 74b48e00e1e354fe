"""The trade-off plots of the unlearning papers, one labelled point per report: TOFU's forget quality (log
scale) against model utility, and MUSE's forget measures (privleak, VerbMem, KnowMem on the forget set)
against utility kept (KnowMem on the retain set). matplotlib is optional (`pip install 'mu-eval[plot]'`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mu_eval.report.compare import Run
from mu_eval.report.schema import ReportError


@dataclass(frozen=True)
class View:
    """Which metric goes on which axis; a task qualifies when it has both."""

    x: str
    y: str
    log_x: bool = False
    x_label: str = ""
    y_label: str = ""


VIEWS = {
    "tofu": View("forget_quality", "model_utility", log_x=True, x_label="forget quality (KS-test p-value, log)",
                 y_label="model utility"),
    "muse": View("privleak", "knowmem_r", x_label="PrivLeak (0 = like the retain model)",
                 y_label="KnowMem on retain set (utility)"),
    "muse-verbmem": View("verbmem_f", "knowmem_r", x_label="VerbMem on forget set",
                         y_label="KnowMem on retain set (utility)"),
    "muse-knowmem": View("knowmem_f", "knowmem_r", x_label="KnowMem on forget set",
                         y_label="KnowMem on retain set (utility)"),
}


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: float


def _pairs(run: Run, view: View, task: str | None) -> list[tuple[str, dict[str, Any], dict[str, Any]]] | str:
    """(task name for the label, x metric, y metric) of one run, or why there is none.

    Bare metric names pair within a task (every task that has both); a `task/metric` axis names its task, so
    the two axes may come from different tasks (WMDP accuracy against MMLU accuracy)."""
    def axis(name: str) -> list[tuple[str, dict[str, Any]]]:
        owner, _, metric = name.rpartition("/")
        return [(t, section["metrics"][metric]) for t, section in run.report.tasks.items()
                if metric in section["metrics"] and (t == (owner or task or t))]

    if "/" not in view.x and "/" not in view.y:
        by_x, by_y = dict(axis(view.x)), dict(axis(view.y))
        both = [name for name in by_x if name in by_y]
        if not both:
            return f"no task with both {view.x} and {view.y}"
        return [(name, by_x[name], by_y[name]) for name in both]
    xs, ys = axis(view.x), axis(view.y)
    for name, found in ((view.x, xs), (view.y, ys)):
        if len(found) != 1:
            return f"{'no' if not found else 'more than one'} task with {name} (name one: task/metric)"
    return [(xs[0][0] if xs[0][0] == ys[0][0] else "", xs[0][1], ys[0][1])]


def points(runs: Sequence[Run], view: View, task: str | None = None) -> tuple[list[Point], list[str]]:
    """One point per run (and task, where several have both metrics), and a line for each left out."""
    found: list[Point] = []
    skipped: list[str] = []
    for run in runs:
        pairs = _pairs(run, view, task)
        if isinstance(pairs, str):
            skipped.append(f"{run.label}: {pairs}")
            continue
        for name, x, y in pairs:
            nulls = [(metric, m) for metric, m in ((view.x, x), (view.y, y)) if m["value"] is None]
            if nulls:
                skipped.append(f"{run.label}: {nulls[0][0]} is null ({nulls[0][1].get('reason')})")
                continue
            if view.log_x and x["value"] <= 0:
                skipped.append(f"{run.label}: {view.x} = {x['value']} cannot go on a log scale")
                continue
            label = run.label if len(pairs) == 1 or not name else f"{run.label} ({name})"
            found.append(Point(label, float(x["value"]), float(y["value"])))
    return found, skipped


def draw(found: Sequence[Point], view: View, title: str = "") -> Any:
    """The figure (a matplotlib Figure, drawn without a display): the points, each labelled."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("mu-eval plot needs matplotlib: pip install 'mu-eval[plot]'") from None
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter([p.x for p in found], [p.y for p in found], zorder=3)
    for point in found:
        axes.annotate(point.label, (point.x, point.y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if view.log_x:
        axes.set_xscale("log")
    axes.set_xlabel(view.x_label or view.x)
    axes.set_ylabel(view.y_label or view.y)
    axes.grid(True, alpha=0.3)
    if title:
        axes.set_title(title)
    return figure


def save(figure: Any, path: str | os.PathLike) -> Path:
    """Write the figure as PNG or SVG, chosen by the file name's suffix."""
    target = Path(path)
    if target.suffix.lower() not in (".png", ".svg"):
        raise ReportError(f"plot file {target}: the name must end in .png or .svg")
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format=target.suffix.lower()[1:])
    return target
