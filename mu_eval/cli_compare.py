"""`mu-eval compare REPORT|FOLDER...` (a table across runs) and `mu-eval plot REPORT|FOLDER...` (the TOFU and
MUSE trade-off scatter plots), each a one-line error with exit status 2 for what a user can fix."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mu_eval.report import ReportError
from mu_eval.report.compare import FORMATS, load_runs, metric_keys, render


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"mu-eval: error: {message}\n")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", nargs="+", help="report files, or folders (every report*.json in the folder and "
                        "its subfolders: earlier runs, sweeps)")
    parser.add_argument("--labels", help="comma-separated names for the runs, in order (default: their folders)")


def _fail(message: str) -> int:
    print(f"mu-eval: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str]) -> int:
    parser = Parser(prog="mu-eval compare", description="Compare runs: one row per metric, one column per report, "
                    "value ± standard error where the metric has one.")
    _common(parser)
    parser.add_argument("--metrics", help="comma-separated metrics: task/metric, or a metric name for every task "
                        "that has it (default: all)")
    parser.add_argument("--format", default="terminal", choices=FORMATS)
    parser.add_argument("--output", "-o", help="write to this file instead of the terminal")
    args = parser.parse_args(list(argv))
    try:
        runs = load_runs(args.reports, _split(args.labels))
        text = render(runs, metric_keys(runs, _split(args.metrics)), args.format)
    except (ReportError, OSError) as error:
        return _fail(str(error))
    if args.output:
        Path(args.output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        print(f"comparison of {len(runs)} reports written to {args.output}")
    else:
        print(text.rstrip("\n"))
    return 0


def plot_main(argv: Sequence[str]) -> int:
    from mu_eval.report.plot import VIEWS, View, draw, points, save

    parser = Parser(prog="mu-eval plot", description="One labelled point per report: TOFU's forget quality (log "
                    "scale) against model utility, MUSE's privleak, VerbMem or KnowMem against utility, or any two "
                    "metrics.")
    _common(parser)
    parser.add_argument("--view", default="tofu", choices=sorted(VIEWS))
    parser.add_argument("--x", help="metric on the x axis instead of the view's (with --y)")
    parser.add_argument("--y", help="metric on the y axis instead of the view's (with --x)")
    parser.add_argument("--log-x", action="store_true", help="log scale on the x axis (with --x/--y)")
    parser.add_argument("--task", help="only this task's metrics (default: every task that has both)")
    parser.add_argument("--title", default="")
    parser.add_argument("--output", "-o", required=True, help="the figure: a .png or .svg file")
    args = parser.parse_args(list(argv))
    if (args.x is None) != (args.y is None):
        return _fail("--x and --y go together")
    view = View(args.x, args.y, log_x=args.log_x) if args.x else VIEWS[args.view]
    try:
        runs = load_runs(args.reports, _split(args.labels))
        found, skipped = points(runs, view, args.task)
        for line in skipped:
            print(f"mu-eval: note: left out {line}", file=sys.stderr)
        if not found:
            return _fail(f"nothing to plot: no report has both {view.x} and {view.y} with values")
        path = save(draw(found, view, args.title), args.output)
    except (ReportError, OSError, ImportError) as error:
        return _fail(str(error))
    print(f"{len(found)} points written to {path}")
    return 0


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None
