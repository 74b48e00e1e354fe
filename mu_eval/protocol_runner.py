"""Multi-step protocols behind `evaluate(..., protocol=...)` and `mu-eval --protocol` (docs/protocols.md).

The model is loaded once; folds and retain data come from the run's tasks; after every step the tasks are
evaluated by `mu_eval.evaluate` on the in-memory model, so each step is scored exactly as a single run would
be, and answers are never taken from a cache entry of other weights (an in-memory model is cached, when at
all, under the hash of its current weights). One report comes out: the last step in `tasks`, every step in
`protocol`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tqdm.auto import tqdm

from mu_eval.data import resolve_data_dir
from mu_eval.evaluation import instantiate_tasks, make_backend, make_contexts, resolve_reference
from mu_eval.plugins import get_registry
from mu_eval.protocols import ProtocolError, choose_folds, parse_protocol_options, protocol_function
from mu_eval.report import Report, validate_report, write_report
from mu_eval.report_builder import json_safe
from mu_eval.run_options import RunOptions
from mu_eval.single_run import run_config, run_single
from mu_eval.task import Task
from mu_eval.unlearning import collect_unlearning_data, save_unlearned, validate_method


def _method_plugin(method: Any) -> str | None:
    if not isinstance(method, str):
        return None
    return get_registry().get("methods", method).plugin


def _step_section(step: Any, plugin: str | None, providers: list[str], evaluate_time: float) -> dict[str, Any]:
    method = None
    if step.method is not None:
        method = {**step.method, "plugin": plugin, "data": {**step.method["data"], "tasks": providers}}
    return {
        "step": step.step,
        "forget_size": step.forget_size,
        "folds": list(step.folds),
        "wall_time_s": step.wall_time_s,
        "evaluate_time_s": evaluate_time,
        "method": method,
        "tasks": {name: {"metrics": task["metrics"]} for name, task in step.result.tasks.items()},
    }


def _final_report(
    last: dict[str, Any], run_config: dict[str, Any], identity: dict[str, Any], section: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    """The last step's report (tasks, engine, versions) with the run's configuration, the loaded model's
    identity, the last step's method section, every step, and the timings of the whole protocol."""
    return {
        **last,
        "config": {**last["config"], **run_config},
        "model": identity,
        "method": json_safe(section["steps"][-1]["method"]),
        "protocol": json_safe(section),
        "timings": timings,
    }


def run_protocol(
    model: Any,
    tasks: Sequence[str | Task],
    options: RunOptions,
    *,
    protocol: str,
    protocol_options: dict[str, Any] | None,
    method: Any,
    method_options: dict[str, Any] | None,
    attacks: Sequence[str] = (),
    save_model: str | os.PathLike | None = None,
) -> Report:
    """Run `protocol` with `method` and return the report; every step is evaluated by `run_single` with the
    run's `options`. Bad protocol, method or task options fail before the model is loaded."""
    started = time.time()
    run_steps = protocol_function(protocol)
    settings = parse_protocol_options(protocol_options)
    if method is None:
        raise ProtocolError(f"protocol {protocol!r} needs an unlearning method (method=..., --method)")
    if attacks:
        raise ProtocolError("attacks do not run under a protocol; keep the final model with --save-model "
                            "and attack it in a separate run")
    if isinstance(method, str):
        validate_method(method, method_options)
    task_instances = instantiate_tasks(tasks, options.task_options)
    reference_data = resolve_reference(options.reference)
    the_backend = make_backend(model, options.backend, options.model_args, options.device,
                               options.use_chat_template)
    timings: dict[str, float] = {"load_model": time.time() - started}
    try:
        if getattr(the_backend, "torch_model", None) is None:
            raise ProtocolError(f"the {options.backend!r} backend holds no model that a method can train")
        data_directory = resolve_data_dir(options.data_dir)
        contexts = make_contexts(task_instances, the_backend, data_directory, options.limit, options.seed,
                                 reference_data, **options.context_settings())
        data, providers = collect_unlearning_data(task_instances, contexts)
        folds, fold_source = choose_folds(task_instances, contexts, data.forget, settings)
        last = len(folds)
        # tasks given by name are built afresh for every step, as a single run builds them
        step_tasks = tasks if all(isinstance(task, str) for task in tasks) else list(task_instances.values())
        evaluate_times: dict[int, float] = {}
        saved_to: list[str] = []
        bar = tqdm(total=last + int(settings.baseline), desc=f"protocol {protocol}", unit="step",
                   disable=not options.progress)

        def evaluate_step(step_model: Any, step_tokenizer: Any, step: int) -> Report:
            final = step == last
            if final and save_model is not None:
                saved_to.append(save_unlearned(step_model, step_tokenizer, save_model))
            evaluate_started = time.time()
            step_options = replace(
                options, data_dir=data_directory, reference=reference_data, extra_config=None,
                log_samples=options.log_samples and final,
                output_path=options.output_path if final and options.log_samples else None,  # last step's samples
            )
            report = run_single((step_model, step_tokenizer), step_tasks, step_options)
            evaluate_times[step] = time.time() - evaluate_started
            bar.update(1)
            return report

        protocol_started = time.time()
        try:
            steps = run_steps(the_backend.torch_model, the_backend.tokenizer, method, folds, evaluate_step,
                              retain=data.retain, options=method_options, seed=options.seed,
                              baseline=settings.baseline, progress=options.progress)
        finally:
            bar.close()
        timings["protocol"] = time.time() - protocol_started
        sections = [_step_section(step, _method_plugin(method), providers, evaluate_times[step.step]) for step in steps]
        if saved_to:
            sections[-1]["method"]["saved_to"] = saved_to[0]
        timings["method"] = sum(step.wall_time_s for step in steps)
        timings["evaluate"] = sum(evaluate_times.values())
        timings["total"] = time.time() - started
        protocol_settings = {**settings.to_json(), "folds": last}
        section = {
            "name": protocol,
            "options": protocol_settings,
            "folds": fold_source,
            "retain": {"size": len(data.retain), "tasks": providers},
            "steps": sections,
        }
        config = run_config(model, options, data_directory, {"method": method, "method_options": method_options or {}},
                            tail={"protocol": protocol, "protocol_options": protocol_settings})
        report = _final_report(steps[-1].result.data, config, the_backend.identity(), section, timings)
        if options.output_path is not None:
            # with samples, the last step has just written its report there: this one replaces it
            write_report(report, options.output_path, replace=options.log_samples)
        else:
            validate_report(report)
        return Report(report)
    finally:
        the_backend.close()

