"""`mu-eval data fetch TASK... --to DIR` and `mu-eval data check DIR [--tasks ...]`: prepare a `--data-dir` on a
machine with hub access, and see what a folder holds before a run on one without."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mu_eval.cli import comma_list
from mu_eval.data import DataError
from mu_eval.data_fetch import MANIFEST_NAME, check, fetch
from mu_eval.options import OptionError, option_names, parse_key_values, route_options
from mu_eval.plugins import get_registry
from mu_eval.plugins.registry import DuplicateNameError, UnknownNameError

USAGE_ERROR = 2
INCOMPLETE = 1
USER_ERRORS = (DataError, OptionError, UnknownNameError, DuplicateNameError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mu-eval data", description="Offline data folders for --data-dir.")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_parser = commands.add_parser(
        "fetch", help="write every dataset file the tasks read (from the hub) into a folder, with a manifest")
    fetch_parser.add_argument("tasks", nargs="+", help="task names (comma-separated or separate)")
    fetch_parser.add_argument("--to", required=True, help="the folder (created; an existing one is added to)")
    fetch_parser.add_argument("--task-args", default="", help="k=v,... as for a run: options change what is read")
    check_parser = commands.add_parser("check", help="what a folder holds of the files the tasks read")
    check_parser.add_argument("directory", help="the data folder")
    check_parser.add_argument("--tasks", type=comma_list,
                              help=f"comma-separated task names (default: the tasks in its {MANIFEST_NAME})")
    check_parser.add_argument("--task-args", default="", help="k=v,... as for a run")
    return parser


def task_options(tasks: Sequence[str], text: str) -> dict[str, dict]:
    registry = get_registry()
    accepted = {name: option_names(registry.task_options(name)) for name in tasks}
    return route_options(parse_key_values(text, "--task-args"), accepted, "task")


def run_fetch(args: argparse.Namespace) -> int:
    tasks = [name for item in args.tasks for name in comma_list(item)]
    result = fetch(tasks, args.to, task_options(tasks, args.task_args))
    files = {path for paths in result.files.values() for path in paths}
    rows = sum(result.manifest["files"][path]["rows"] for path in files if path in result.manifest["files"])
    print(f"{len(files)} files, {rows} rows in {args.to} (manifest: {MANIFEST_NAME})")
    failed = {name: hooks for name, hooks in result.failed.items() if hooks}
    for name, hooks in failed.items():
        for hook, reason in hooks.items():
            print(f"mu-eval: incomplete: {name}: {hook} could not read its data: {reason}", file=sys.stderr)
    return INCOMPLETE if failed else 0


def run_check(args: argparse.Namespace) -> int:
    result = check(args.directory, args.tasks, task_options(args.tasks, args.task_args) if args.tasks else None)
    counts = {"present": 0, "missing": 0, "changed": 0, "unreadable": 0}
    for name, statuses in result.statuses.items():
        print(f"{name}:")
        for status in statuses:
            label = status.state if status.state != "unlisted" else "present"
            detail = f"not in the manifest, {status.detail}" if status.state == "unlisted" else status.detail
            where = f"{status.path}  ({status.dataset})" if status.path else status.dataset
            print(f"  {label:<10} {where}{': ' + detail if detail else ''}")
            counts["present" if status.state in ("ok", "unlisted") else status.state] += 1
        for hook, reason in result.failed[name].items():
            print(f"  {'failed':<10} {hook}: {reason}")
    summary = ", ".join(f"{count} {state}" for state, count in counts.items() if count or state == "present")
    verdict = "complete" if result.complete else "incomplete"
    manifest = "" if result.has_manifest else f"; no {MANIFEST_NAME}, hashes not checked"
    print(f"{args.directory}: {summary}: {verdict}{manifest}")
    return 0 if result.complete else INCOMPLETE


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    import datasets

    datasets.disable_progress_bars()  # one line per file is said here instead
    try:
        return run_fetch(args) if args.command == "fetch" else run_check(args)
    except USER_ERRORS as error:
        print(f"mu-eval: error: {error}", file=sys.stderr)
        return USAGE_ERROR
