"""One run without a protocol: load the model, apply the method (when asked), evaluate the tasks in one pooled
sweep, run the attacks, and build the report. `mu_eval.evaluate` calls it, and the protocol runner calls it
once per step on the in-memory model."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mu_eval.attack import Attack, AttackContext
from mu_eval.backend import Backend
from mu_eval.cache import AnswerCache
from mu_eval.cache_location import default_cache_dir
from mu_eval.data import resolve_data_dir
from mu_eval.distributed import current_processes
from mu_eval.engine import Engine
from mu_eval.evaluation import (
    ModelInput,
    check_tasks_fit,
    instantiate_tasks,
    make_backend,
    make_contexts,
    resolve_reference,
    run_tasks,
    warn_if_reference_is_the_model,
)
from mu_eval.identity import weights_digest
from mu_eval.options import OptionError
from mu_eval.plugins import get_registry
from mu_eval.references import describe_references
from mu_eval.report import Report, write_report
from mu_eval.report_builder import build_report
from mu_eval.run_options import RunOptions
from mu_eval.task import Task, TaskResult
from mu_eval.unlearning import apply_method


def record_limit(section: Any, limit: int | float | None) -> Any:
    """An attack section with the run's `limit` (null without one), as `config.limit` records it for the
    tasks: the attack's inputs were cut by the same limit, and a reader of the section should not need to
    look elsewhere to know that its counts are partial. The key belongs to the harness."""
    if not isinstance(section, dict):
        return section
    return {**section, "limit": limit}


def run_config(
    model: ModelInput, options: RunOptions, data_directory: Path | None, what: dict[str, Any],
    settings: dict[str, Any] | None = None, tail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report's `config`, built in one place for single runs and protocols: the model, `what` was run
    (tasks, method, ... with their options), the backend and model args, the run's `settings`, where the
    data and reference came from, `tail`, and the caller's `extra_config`."""
    in_memory = isinstance(model, tuple | Backend)
    return {
        "model": None if in_memory else str(model),
        "step": options.step,
        "tag": options.tag,
        "subset": options.describe_subset(),
        "generation": {"generate": options.generate, "max_new_tokens": options.max_new_tokens},
        **what,
        "backend": options.backend,
        "model_args": options.model_args or {},
        **(settings or {}),
        "data_dir": str(data_directory) if data_directory else None,
        "reference": describe_references(options.reference),
        **(tail or {}),
        **(options.extra_config or {}),
    }


def model_identity(backend: Backend, in_memory: bool) -> dict[str, Any]:
    """The backend's identity of its model; an in-memory model's weights named by their content
    (`weights_digest`), so that two checkpoints of one training run never look alike."""
    identity = backend.identity()
    if in_memory and identity.get("weights_sha256") is None and getattr(backend, "torch_model", None) is not None:
        identity["weights_sha256"] = weights_digest(backend.torch_model)
    return identity


def make_attacks(attacks: Sequence[str], attack_options: dict[str, dict] | None) -> dict[str, Attack]:
    registry = get_registry()
    return {name: registry.attack(name)(**(attack_options or {}).get(name, {})) for name in attacks}


def run_single(
    model: ModelInput,
    tasks: Sequence[str | Task],
    options: RunOptions,
    *,
    attacks: Sequence[str] = (),
    attack_options: dict[str, dict] | None = None,
    method: str | None = None,
    method_options: dict[str, Any] | None = None,
    save_model: str | os.PathLike | None = None,
) -> Report:
    """One evaluation (after `method`, when given, and followed by `attacks`): `evaluate` without a protocol."""
    started = time.time()
    in_memory = isinstance(model, tuple)
    task_instances = instantiate_tasks(tasks, options.task_options)
    attack_instances = make_attacks(attacks, attack_options)
    reference_data = resolve_reference(options.reference)
    processes = current_processes() if options.data_parallel else None
    if processes is not None and attacks:
        raise OptionError("data-parallel processes run tasks and unlearning methods, not attacks: run the attacks "
                          "in one process (on the model saved with --save-model)")
    spread = sorted({"parallelize", "device_map"} & set(options.model_args or {}))
    if processes is not None and spread:
        raise OptionError(f"--model-args {spread[0]} spreads one copy of the model over every GPU, and each "
                          "data-parallel process holds its own copy: use one or the other")
    main_process = processes is None or processes.is_main
    progress = options.progress and main_process
    device = options.device or (processes.device if processes is not None else None)
    the_backend = make_backend(model, options.backend, options.model_args, device, options.use_chat_template)
    identity = model_identity(the_backend, in_memory)
    if method is None:  # a method changes the weights the identity was read from
        warn_if_reference_is_the_model(reference_data, identity)
    timings: dict[str, float] = {"load_model": time.time() - started}
    cache = None
    try:
        data_directory = resolve_data_dir(options.data_dir)
        contexts = make_contexts(task_instances, the_backend, data_directory, options.limit, options.seed,
                                 reference_data, **options.context_settings())
        method_section = None
        if method is not None:
            check_tasks_fit(the_backend, task_instances, contexts, options.seed)  # before the training, not after
            method_started = time.time()
            method_section = apply_method(
                method, method_options or {}, the_backend, task_instances, contexts, save_model, options.seed,
                options.progress,
            )
            timings["method"] = time.time() - method_started
        if method_section is not None:
            identity = model_identity(the_backend, in_memory)
        if main_process and (options.use_cache if options.use_cache is not None else not in_memory):
            cache_identity = dict(identity)
            if method_section is not None:
                # the weights are not those of any file on disk: key the cache by their content
                cache_identity["method"] = method_section.get("config")
                if not in_memory:
                    cache_identity["weights_sha256"] = weights_digest(the_backend.torch_model)
            if (in_memory or method_section is not None) and cache_identity.get("weights_sha256") is None:
                raise ValueError("the answer cache needs the model's weights, and some are not materialised (meta "
                                 "tensors): pass use_cache=False")
            cache = AnswerCache(options.cache_dir or default_cache_dir(), cache_identity)
        engine = Engine(the_backend, batch_size=options.batch_size, cache=cache, progress=progress, processes=processes)
        evaluation_started = time.time()
        results = run_tasks(engine, task_instances, contexts, options.seed)
        timings["evaluate"] = time.time() - evaluation_started
        attack_sections = {}
        for name, attack in attack_instances.items():
            attack_started = time.time()

            def evaluate_on(other_backend: Backend, some_tasks: dict[str, Task]) -> dict[str, TaskResult]:
                other_backend.inputs = the_backend.inputs  # the tasks' requests name inputs of this run's store
                other_engine = Engine(other_backend, batch_size=options.batch_size, progress=options.progress)
                return run_tasks(other_engine, some_tasks, contexts, options.seed)

            attack_context = AttackContext(
                backend=the_backend,
                tasks=task_instances,
                contexts=contexts,
                results=results,
                evaluate=evaluate_on,
                answer=functools.partial(engine.run, source=f"attack {name!r}"),
                reference=reference_data,
                seed=options.seed,
                device=options.device,
                options=dict(attack.options),
                progress=options.progress,
                limit=options.limit,
            )
            attack_sections[name] = record_limit(attack.run(attack_context), options.limit)
            timings[f"attack:{name}"] = time.time() - attack_started
        timings["total"] = time.time() - started
        what = {"tasks": list(task_instances), "task_options": options.task_options or {}, "attacks": list(attacks),
                "attack_options": attack_options or {}, "method": method, "method_options": method_options or {}}
        settings = {"device": str(getattr(the_backend, "device", None) or options.device),
                    "batch_size": options.batch_size, "limit": options.limit, "seed": options.seed}
        tail = {"use_chat_template": options.use_chat_template, "cache": str(cache.path) if cache else None}
        config = run_config(model, options, data_directory, what, settings, tail)
        data = build_report(
            config=config,
            identity=identity,
            tasks=task_instances,
            results=results,
            attacks=attack_sections,
            method=method_section,
            timings=timings,
            engine_stats=engine.stats.to_json(),
        )
        samples = {name: result.samples for name, result in results.items()} if options.log_samples else None
        if options.output_path is not None and main_process:
            write_report(data, options.output_path, samples)
        return Report(data)
    finally:
        if cache is not None:
            cache.close()
        the_backend.close()
