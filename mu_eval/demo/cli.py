"""`mu-eval demo [--output-path DIR] [--seed S]`: run the offline demo and print what it found.

The exit status is 0 when forget quality separates the models as it should (target < 0.05 against the
reference, second reference > 0.1), 1 when it does not, so the demo doubles as an installation check.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mu_eval.demo.pipeline import DemoConfig, DemoResult, run_demo

ROLES = ("target", "reference", "reference_seed2")


def build_parser() -> argparse.ArgumentParser:
    defaults = DemoConfig()
    parser = argparse.ArgumentParser(
        prog="mu-eval demo",
        description="Train tiny models on synthetic profiles (all people: target; retain split: references) "
        "and compare them with the TOFU metrics. Needs no network; a few minutes on 2 CPU cores.",
    )
    parser.add_argument("--output-path", default="mu-eval-demo", help="folder for data, models and reports")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seeds the data and the three trainings")
    parser.add_argument("--people", type=int, default=defaults.people, help="synthetic people (20 questions each)")
    parser.add_argument("--epochs", type=float, default=defaults.epochs, help="training passes over the data")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def format_number(value: float | None) -> str:
    if value is None:
        return "null"
    return f"{value:.3e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"


def summary(result: DemoResult) -> str:
    """One row per metric, one column per model, then the timings and the two separation checks."""
    task = result.config.task_name
    reports = {role: report for role in ROLES if role in result.models
               and (report := result.models[role].report) is not None}
    first = next(iter(reports.values()))
    rows = [("metric", *reports, "n", "better")]
    for name, metric in first.tasks[task]["metrics"].items():
        values = [format_number(report.tasks[task]["metrics"][name]["value"]) for report in reports.values()]
        direction = {True: "higher", False: "lower", None: "-"}[metric["higher_is_better"]]
        rows.append((name, *values, str(metric["n"]), direction))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.append("")
    for role, model in result.models.items():
        lines.append(f"{role}: seed {model.seed}, {model.steps} steps on {model.examples} examples, "
                     f"train {model.train_seconds:.0f}s, evaluate {model.eval_seconds:.0f}s")
    lines.append(f"total {result.seconds:.0f}s; reports under {result.output_path}")
    for description, value, expectation, passed in result.checks():
        lines.append(f"{'ok  ' if passed else 'FAIL'} {description} = {format_number(value)} (expected {expectation})")
    config = result.config
    lines.append(
        f"\nre-run one evaluation: mu-eval --model {result.output_path / 'models' / 'target'} --tasks {task} "
        f"--task-args people={config.people},data_seed={config.seed} --reference {result.output_path / 'reference'}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(None if argv is None else list(argv))
    if args.people < 10:
        print("mu-eval demo: error: --people must be at least 10")
        return 2
    if args.quiet:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # checkpoint-writing bars; this process ends with the demo
    config = DemoConfig(seed=args.seed, people=args.people, epochs=args.epochs, progress=not args.quiet)
    result = run_demo(args.output_path, config)
    print(summary(result))
    return 0 if result.passed else 1
