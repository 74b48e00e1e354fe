"""The Python API: `evaluate` a model (a path, or an in-memory model and tokenizer) on tasks."""

from __future__ import annotations

import os
import random
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mu_eval.attack import AttackContext
from mu_eval.backends.base import Backend
from mu_eval.cache import AnswerCache
from mu_eval.cache_location import default_cache_dir
from mu_eval.data import load_rows, resolve_data_dir
from mu_eval.engine import Engine
from mu_eval.identity import hash_state_dict
from mu_eval.plugins import get_registry
from mu_eval.references import describe_references, resolve_references, same_weights
from mu_eval.report import Report, write_report
from mu_eval.report_builder import build_report
from mu_eval.run_options import RunOptions
from mu_eval.task import Task, TaskContext, TaskOptionError, TaskResult

ModelInput = str | os.PathLike | tuple[Any, Any] | Backend


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def make_backend(
    model: ModelInput,
    backend: str = "hf",
    model_args: dict[str, str] | None = None,
    device: str | None = None,
    use_chat_template: bool = True,
) -> Backend:
    """A backend for a path or hub id, an in-memory (model, tokenizer) pair, or a ready backend."""
    if isinstance(model, Backend):
        return model
    registry = get_registry()
    backend_class = registry.backend(backend)
    if isinstance(model, tuple):
        torch_model, tokenizer = model
        return backend_class.from_model(torch_model, tokenizer, use_chat_template=use_chat_template)
    return backend_class.from_pretrained(
        str(model), model_args=model_args, device=device, use_chat_template=use_chat_template
    )


def resolve_reference(reference: Any) -> dict | None:
    """The run's reference: a report, published logs, or a list of them (one per task); see mu_eval.references."""
    return resolve_references(reference)


def warn_if_reference_is_the_model(reference: dict | None, identity: dict[str, Any]) -> None:
    for source in same_weights(reference, identity):
        warnings.warn(f"the reference {source} has the evaluated model's weights (same sha256): every metric "
                      "against the reference (forget quality, privleak) compares the model with itself", stacklevel=3)


def instantiate_tasks(tasks: Sequence[str | Task], task_options: dict[str, dict] | None = None) -> dict[str, Task]:
    registry = get_registry()
    instances: dict[str, Task] = {}
    for task in tasks:
        if isinstance(task, Task):
            instances[task.name] = task
        else:
            try:
                instances[task] = registry.task(task, **(task_options or {}).get(task, {}))
            except (TypeError, ValueError) as error:
                if isinstance(error, TaskOptionError):
                    raise
                raise TaskOptionError(f"task {task!r}: {error}") from error
    return instances


def check_limit(limit: int | None) -> None:
    """A limit below one would silently evaluate nothing: refuse it before any model is loaded."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")


def make_contexts(
    tasks: dict[str, Task],
    backend: Backend,
    data_directory: Path | None,
    limit: int | None,
    seed: int,
    reference: dict | None,
) -> dict[str, TaskContext]:
    """One context per task, all reading data from `data_directory` and formatting prompts for `backend`."""
    chat = backend.chat_formatter()
    return {
        name: TaskContext(
            load=lambda spec: load_rows(spec, data_directory),
            chat=chat,
            uses_chat_template=backend.has_chat_template(),
            limit=limit,
            seed=seed,
            reference=reference,
            options=dict(task.options),
            truncate_tokens=backend.truncate_to_tokens if backend.tokenizer is not None else None,
        )
        for name, task in tasks.items()
    }


def run_tasks(
    engine: Engine, tasks: dict[str, Task], contexts: dict[str, TaskContext], seed: int
) -> dict[str, TaskResult]:
    """Build every task's requests, answer them in one pooled sweep, and let each task score its answers."""
    requests = {}
    for name, task in tasks.items():
        seed_everything(seed)
        requests[name] = task.build_requests(contexts[name])
    answers = engine.run_tasks(requests)
    return {name: task.process_results(answers[name], contexts[name]) for name, task in tasks.items()}


def record_limit(section: Any, limit: int | None) -> Any:
    """An attack section with the run's `limit` (null without one), as `config.limit` records it for the
    tasks: the attack's inputs were cut by the same limit, and a reader of the section should not need to
    look elsewhere to know that its counts are partial. The key belongs to the harness."""
    if not isinstance(section, dict):
        return section
    return {**section, "limit": limit}


def evaluate(
    model: ModelInput,
    tasks: Sequence[str | Task],
    *,
    tokenizer: Any = None,
    task_options: dict[str, dict] | None = None,
    attacks: Sequence[str] = (),
    attack_options: dict[str, dict] | None = None,
    method: str | None = None,
    method_options: dict[str, Any] | None = None,
    protocol: str | None = None,
    protocol_options: dict[str, Any] | None = None,
    save_model: str | os.PathLike | None = None,
    backend: str = "hf",
    model_args: dict[str, str] | None = None,
    device: str | None = None,
    batch_size: int | str = "auto",
    limit: int | None = None,
    seed: int = 1234,
    data_dir: str | os.PathLike | None = None,
    reference: Any = None,
    output_path: str | os.PathLike | None = None,
    log_samples: bool = False,
    use_cache: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_chat_template: bool = True,
    progress: bool = True,
    extra_config: dict[str, Any] | None = None,
) -> Report:
    """Evaluate `model` on `tasks` and return the report (also written to `output_path` when given).

    `model` is a path or hub id, or an in-memory `(model, tokenizer)` pair (or pass `tokenizer=`); an
    in-memory model is handed back in the train/eval mode and on the device it had. The answer cache is
    on by default for models loaded from a path and off for in-memory models, whose weights change
    during training.

    With `protocol` ("sequential" or "growing") the method runs once per forget fold and the tasks are
    evaluated after every step; the report's `protocol` section holds every step and `tasks` the last one
    (docs/protocols.md).
    """
    check_limit(limit)
    options = RunOptions(
        task_options=task_options, backend=backend, model_args=model_args, device=device, batch_size=batch_size,
        limit=limit, seed=seed, data_dir=data_dir, reference=reference, output_path=output_path,
        log_samples=log_samples, use_cache=use_cache, cache_dir=cache_dir, use_chat_template=use_chat_template,
        progress=progress, extra_config=extra_config,
    )
    if tokenizer is not None and not isinstance(model, tuple | Backend):
        model = (model, tokenizer)
    if protocol is not None:
        from mu_eval.protocol_runner import run_protocol

        return run_protocol(model, tasks, options, protocol=protocol, protocol_options=protocol_options,
                            method=method, method_options=method_options, attacks=attacks, save_model=save_model)
    return run_single(model, tasks, options, attacks=attacks, attack_options=attack_options, method=method,
                      method_options=method_options, save_model=save_model)


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
    attack_instances = {name: get_registry().attack(name)(**(attack_options or {}).get(name, {})) for name in attacks}
    reference_data = resolve_reference(options.reference)
    the_backend = make_backend(model, options.backend, options.model_args, options.device, options.use_chat_template)
    if method is None:  # a method changes the weights the identity was read from
        warn_if_reference_is_the_model(reference_data, the_backend.identity())
    timings: dict[str, float] = {"load_model": time.time() - started}
    cache = None
    try:
        data_directory = resolve_data_dir(options.data_dir)
        contexts = make_contexts(task_instances, the_backend, data_directory, options.limit, options.seed,
                                 reference_data)
        method_section = None
        if method is not None:
            from mu_eval.unlearning import apply_method

            method_started = time.time()
            method_section = apply_method(
                method, method_options or {}, the_backend, task_instances, contexts, save_model, options.seed,
                options.progress,
            )
            timings["method"] = time.time() - method_started
        if options.use_cache if options.use_cache is not None else not in_memory:
            identity = the_backend.identity()
            if in_memory or method_section is not None:
                # the weights are not those of any file on disk: key the cache by their content
                identity["weights_sha256"] = hash_state_dict(the_backend.torch_model)
                identity["method"] = method_section and method_section.get("config")
            cache = AnswerCache(options.cache_dir or default_cache_dir(), identity)
        engine = Engine(the_backend, batch_size=options.batch_size, cache=cache, progress=options.progress)
        evaluation_started = time.time()
        results = run_tasks(engine, task_instances, contexts, options.seed)
        timings["evaluate"] = time.time() - evaluation_started
        attack_sections = {}
        for name, attack in attack_instances.items():
            attack_started = time.time()

            def evaluate_on(other_backend: Backend, some_tasks: dict[str, Task]) -> dict[str, TaskResult]:
                other_engine = Engine(other_backend, batch_size=options.batch_size, progress=options.progress)
                return run_tasks(other_engine, some_tasks, contexts, options.seed)

            attack_context = AttackContext(
                backend=the_backend,
                tasks=task_instances,
                contexts=contexts,
                results=results,
                evaluate=evaluate_on,
                answer=engine.run,
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
        config = {
            "model": str(model) if not in_memory else None,
            "tasks": list(task_instances),
            "task_options": options.task_options or {},
            "attacks": list(attacks),
            "attack_options": attack_options or {},
            "method": method,
            "method_options": method_options or {},
            "backend": options.backend,
            "model_args": options.model_args or {},
            "device": str(getattr(the_backend, "device", options.device)),
            "batch_size": options.batch_size,
            "limit": options.limit,
            "seed": options.seed,
            "data_dir": str(data_directory) if data_directory else None,
            "reference": describe_references(options.reference),
            "use_chat_template": options.use_chat_template,
            "cache": str(cache.path) if cache else None,
            **(options.extra_config or {}),
        }
        data = build_report(
            config=config,
            identity=the_backend.identity(),
            tasks=task_instances,
            results=results,
            attacks=attack_sections,
            method=method_section,
            timings=timings,
            engine_stats=engine.stats.to_json(),
        )
        samples = {name: result.samples for name, result in results.items()} if options.log_samples else None
        if options.output_path is not None:
            write_report(data, options.output_path, samples)
        return Report(data)
    finally:
        if cache is not None:
            cache.close()
        the_backend.close()
