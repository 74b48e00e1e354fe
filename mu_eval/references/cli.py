"""`mu-eval convert-reference SOURCE --output-path OUT`: published logs written as a mu-eval report.

The report holds the per-item values the tasks read from a reference, so it can be given to `--reference`,
kept beside a paper's numbers, or inspected; `--reference` also reads the logs directly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mu_eval.references import load_reference
from mu_eval.report import ReportError, write_report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mu-eval convert-reference",
        description="Convert TOFU's published eval logs or an open-unlearning log (TOFU_EVAL.json, MUSE_EVAL.json) "
        "into a mu-eval report usable with --reference.",
    )
    parser.add_argument("source", help="log folder or file; TASK=PATH names the task (e.g. tofu_forget05=DIR)")
    parser.add_argument("--output-path", required=True, help="folder (or .json path) for the report")
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    try:
        data = load_reference(args.source)
        path = write_report(data, args.output_path)
    except (ReportError, OSError) as error:
        print(f"mu-eval: error: {error}", file=sys.stderr)
        return 2
    for task, section in data["tasks"].items():
        counts = ", ".join(f"{name} {len(values)}" for name, values in section.get("items", {}).items())
        print(f"{task}: {counts}")
    print(f"report written to {path}")
    return 0
