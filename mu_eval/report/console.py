"""The summary printed after a run: a header saying what was evaluated and how, the metrics table, the
attacks' numbers in tables of their own, and the reasons for null values listed once below the tables
(so no row grows to the width of its explanation)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol


class Report(Protocol):
    """What the summary reads of a `mu_eval.report.Report` (which imports this module to print itself)."""

    data: dict[str, Any]

    @property
    def tasks(self) -> dict[str, Any]: ...

    def __getitem__(self, key: str) -> Any: ...

DIRECTION = {True: "higher", False: "lower", None: "-"}
#: Subtrees of an attack section that hold per-item arrays or settings rather than results.
SKIPPED_KEYS = ("items", "config")


def format_number(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Rows as aligned columns (the first row is the heading); columns in `right` are right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def header(report: Report) -> str:
    """Model, weights hash prefix, backend, dtype, chat template on/off, reference, limit and method."""
    model, config = report["model"], report["config"]
    digest = model.get("weights_sha256") or ""
    parts = [f"model {model.get('model')}", f"sha256 {digest[:12] or '-'}", f"backend {model.get('backend')}",
             f"dtype {model.get('dtype')}"]
    if model.get("adapter"):
        parts.append(f"adapter {model['adapter']}")
    template = config.get("use_chat_template")
    # said loudly: lm-evaluation-harness's default is the other way round (docs/lm-eval.md)
    template_text = {True: "ON (lm-eval's default is off)", False: "off", None: "unknown"}.get(template, str(template))
    reference = config.get("reference")
    if isinstance(reference, list | tuple):
        reference = ", ".join(map(str, reference))
    second = [f"chat template {template_text}", f"reference {reference or 'none'}"]
    if config.get("limit") is not None:
        second.append(f"limit {config['limit']}")
    if config.get("method"):
        second.append(f"method {config['method']}")
    return " | ".join(parts) + "\n" + " | ".join(second)


class Notes:
    """Reasons for null values, numbered once each, printed below the tables."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def mark(self, reason: str | None) -> str:
        if not reason:
            return "null"
        number = self.numbers.setdefault(reason, len(self.numbers) + 1)
        return f"null [{number}]"

    def render(self) -> str:
        return "\n".join(f"[{number}] {reason}" for reason, number in self.numbers.items())


def metrics_table(report: Report, notes: Notes) -> str:
    """task, metric, value, stderr, n, better: one row per task metric."""
    rows = [["task", "metric", "value", "stderr", "n", "better"]]
    for task_name, task in report.tasks.items():
        for metric_name, metric in task["metrics"].items():
            value = metric["value"]
            shown = notes.mark(metric.get("reason")) if value is None else format_number(value)
            stderr = metric.get("stderr")
            rows.append([task_name, metric_name, shown, "" if stderr is None else format_number(stderr),
                         str(metric["n"]), DIRECTION[metric["higher_is_better"]]])
    return table(rows, right=(2, 3, 4))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _result_rows(node: dict[str, Any], path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """(path, {key: number or (None, reason)}) for every object below the attack's top level that holds
    numbers; counts (`n_*`) and per-item arrays are left out."""
    cells: dict[str, Any] = {}
    for key, value in node.items():
        if key in SKIPPED_KEYS:
            continue
        if isinstance(value, dict):
            yield from _result_rows(value, (*path, key))
        elif path and _is_number(value) and not key.startswith("n_"):
            cells[key] = value
        elif path and value is None and isinstance(node.get(f"{key}_reason"), str):
            cells[key] = (None, node[f"{key}_reason"])
    if cells:
        yield path, cells


def attack_tables(report: Report, notes: Notes) -> list[str]:
    """Per attack, one table per shape of result (rows that share their columns)."""
    tables = []
    for attack_name, section in (report.data.get("attacks") or {}).items():
        if not isinstance(section, dict):
            continue
        shapes: dict[tuple[str, ...], list[list[str]]] = {}
        for path, cells in _result_rows(section, ()):
            columns = tuple(cells)
            row = [".".join(path)]
            for column in columns:
                value = cells[column]
                row.append(notes.mark(value[1]) if isinstance(value, tuple) else format_number(value))
            shapes.setdefault(columns, []).append(row)
        for columns, rows in shapes.items():
            tables.append(f"attack {attack_name}\n" + table([["result", *columns], *rows],
                                                           right=tuple(range(1, len(columns) + 1))))
    return tables


def summary(report: Report) -> str:
    """Everything the console shows after a run, in the order a reader needs it."""
    notes = Notes()
    parts = [header(report), metrics_table(report, notes), *attack_tables(report, notes)]
    if notes.numbers:
        parts.append("null values:\n" + notes.render())
    return "\n\n".join(parts)
