"""Runs an evaluation for the CLI: turns user errors into one-line messages and prints a summary."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mu_eval.attack import AttackError
from mu_eval.backend import BackendError
from mu_eval.data import DataError
from mu_eval.distributed import current_processes, launched_as_helper, launched_in_parallel
from mu_eval.engine import ProcessFailedError
from mu_eval.inputs import InputError
from mu_eval.method import MethodError
from mu_eval.options import OptionError, option_names, route_options
from mu_eval.paths import PathError
from mu_eval.plugins import get_registry
from mu_eval.plugins.registry import DuplicateNameError, UnknownNameError
from mu_eval.protocols import validate_protocol
from mu_eval.report import Report, ReportError
from mu_eval.report.console import format_number, summary
from mu_eval.report.io import report_path
from mu_eval.sweep import SUMMARY_NAME, evaluate_checkpoints, expand_models
from mu_eval.sweep import summary_table as sweep_table
from mu_eval.unlearning import validate_method

USER_ERRORS = (BackendError, DataError, ReportError, AttackError, MethodError, OptionError, InputError,
               UnknownNameError, DuplicateNameError, PathError)


def protocol_table(report: Report) -> str:
    """One line per protocol step: forget-set size, folds, then every task metric (the curve C5/C6 track)."""
    steps = report["protocol"]["steps"]
    columns = list(dict.fromkeys(f"{task}/{metric}" for step in steps for task, section in step["tasks"].items()
                                 for metric in section["metrics"]))
    rows = [["step", "forget", "folds", *columns]]
    for step in steps:
        values = {f"{task}/{metric}": format_number(value["value"])
                  for task, section in step["tasks"].items() for metric, value in section["metrics"].items()}
        folds = "+".join(map(str, step["folds"])) or "-"
        rows.append([str(step["step"]), str(step["forget_size"]), folds, *(values.get(c, "") for c in columns)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    title = f"protocol {report['protocol']['name']}: {len(steps)} steps (tasks above: the last step)"
    return "\n".join([title] + ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows])


@contextlib.contextmanager
def quiet_libraries(quiet: bool = True) -> Iterator[None]:
    """`--quiet`: the libraries' own progress bars ("Loading weights") and info messages go too, for the
    run only (a caller of `main` in the same process gets its settings back)."""
    if not quiet:
        yield
        return
    import datasets
    import huggingface_hub.utils
    import transformers

    hf_logging = transformers.utils.logging
    saved = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(), datasets.logging.get_verbosity(),
             datasets.is_progress_bar_enabled(), huggingface_hub.utils.are_progress_bars_disabled())
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()
    try:
        yield
    finally:
        hf_logging.set_verbosity(saved[0])
        if saved[1]:
            hf_logging.enable_progress_bar()
        datasets.logging.set_verbosity(saved[2])
        if saved[3]:
            datasets.enable_progress_bars()
        if not saved[4]:
            huggingface_hub.utils.enable_progress_bars()


def run_from_cli(
    args: argparse.Namespace,
    model_args: dict[str, str],
    task_args: dict[str, str],
    attack_args: dict[str, str],
    method_args: dict[str, str],
    protocol_args: dict[str, str] | None = None,
) -> int:
    from mu_eval.api import evaluate

    registry = get_registry()
    try:
        task_keys = {name: option_names(registry.task_options(name)) for name in args.tasks}
        attack_keys = {name: option_names(registry.attack(name).Options) for name in args.attacks}
        task_options = route_options(task_args, task_keys, "task")
        attack_options = route_options(attack_args, attack_keys, "attack")
        if args.method:
            validate_method(args.method, method_args)  # option errors before the model is loaded
        protocol = getattr(args, "protocol", None)
        if protocol:
            validate_protocol(protocol, protocol_args)
        if args.subset_seed is not None and args.limit is None:
            raise OptionError("--subset-seed chooses --limit items of each set: give --limit too")
        if launched_as_helper():  # the main process says it once
            warnings.simplefilter("ignore")
        models = expand_models(args.model)
        options: dict[str, Any] = dict(
            task_options=task_options,
            attacks=args.attacks,
            attack_options=attack_options,
            method=args.method,
            method_options=method_args,
            protocol=protocol or None,
            protocol_options=protocol_args or {},
            save_model=args.save_model,
            backend=args.backend,
            model_args=model_args,
            device=args.device,
            batch_size=args.batch_size,
            limit=args.limit,
            subset_seed=args.subset_seed,
            generate=not args.scoring_only,
            seed=args.seed,
            data_dir=args.data_dir,
            reference=args.reference,
            output_path=args.output_path,
            log_samples=args.log_samples,
            use_cache=False if args.no_cache else None,
            cache_dir=args.cache_dir,
            use_chat_template=not args.no_chat_template,
            progress=not args.quiet,
            data_parallel=launched_in_parallel(),
        )
        earlier = kept_reports(args.output_path)
        with quiet_libraries(args.quiet):
            if len(models) > 1:
                sweep = evaluate_checkpoints(models, args.tasks, **options)
            else:
                report = evaluate(models[0], args.tasks, **options)
    except USER_ERRORS as error:
        print(f"mu-eval: error: {error}", file=sys.stderr)
        return 2
    except ProcessFailedError as error:  # the failing process tells its own story
        print(f"mu-eval: error: {error}", file=sys.stderr)
        return 1
    processes = current_processes()
    if processes is not None and not processes.is_main:
        return 0  # the main process prints and writes
    if len(models) > 1:
        print(sweep_table(sweep.summary))
        if args.output_path:
            print(f"{len(models)} reports and their summary ({SUMMARY_NAME}) written to {args.output_path}")
        return 0
    print(summary(report))
    if report.data.get("protocol"):
        print(protocol_table(report))
    if args.output_path:
        print(f"report written to {report_path(args.output_path)}")
        for path in sorted(kept_reports(args.output_path) - earlier):
            print(f"the earlier report there is kept as {path}")
    return 0


def kept_reports(output_path: str | None) -> set[Path]:
    """The earlier reports kept beside the report `output_path` names (see `mu_eval.report.io`)."""
    if not output_path:
        return set()
    path = report_path(output_path)
    try:
        return set(path.parent.glob(f"{path.stem}_*{path.suffix}"))
    except (OSError, ValueError):  # a path the file system refuses: the run's path check names the problem
        return set()
