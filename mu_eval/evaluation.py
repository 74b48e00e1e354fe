"""One evaluation's parts: the backend for a model, the tasks and their contexts, and one pooled sweep of
every task's requests through the engine."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mu_eval.backend import Backend
from mu_eval.data import load_rows
from mu_eval.engine import Engine
from mu_eval.inputs import InputStore
from mu_eval.plugins import get_registry
from mu_eval.preflight import check_context
from mu_eval.references import resolve_references, same_weights
from mu_eval.requests import GenerateResult, Request
from mu_eval.seeding import seed_everything
from mu_eval.task import MetricValue, Task, TaskContext, TaskOptionError, TaskResult

ModelInput = str | os.PathLike | tuple[Any, Any] | Backend


def make_backend(
    model: ModelInput,
    backend: str = "hf",
    model_args: dict[str, Any] | None = None,
    device: str | None = None,
    use_chat_template: bool = True,
) -> Backend:
    """A backend for a path or hub id, an in-memory (model, tokenizer) pair, or a ready backend."""
    if isinstance(model, Backend):
        return model
    backend_class = get_registry().backend(backend)
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
    """Task instances by name: registered names are made with their options, instances pass through."""
    registry = get_registry()
    instances: dict[str, Task] = {}
    for task in tasks:
        if isinstance(task, Task):
            instances[task.name] = task
            continue
        try:
            instances[task] = registry.task(task, **(task_options or {}).get(task, {}))
        except TaskOptionError:
            raise
        except (TypeError, ValueError) as error:
            raise TaskOptionError(f"task {task!r}: {error}") from error
    return instances


def check_limit(limit: int | float | None) -> None:
    """A limit of zero or below would silently evaluate nothing: refuse it before any model is loaded.
    A float below one is a fraction of each set (as lm-eval's `--limit 0.1`)."""
    if limit is None:
        return
    if isinstance(limit, float) and 0 < limit < 1:
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, a fraction between 0 and 1, or None, got {limit!r}")


def check_device(device: str | None) -> None:
    """A device torch does not know, or one this machine lacks, is refused before any model is loaded."""
    if device is None:
        return
    import torch

    from mu_eval.backend import BackendError

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise BackendError(f"--device {device!r} is not a device (cpu, cuda, cuda:1, mps, ...)") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise BackendError(f"--device {device!r}: CUDA is not available on this machine")
        if parsed.index is not None and parsed.index >= count:
            raise BackendError(f"--device {device!r}: this machine has {count} CUDA device(s), cuda:0 to "
                               f"cuda:{count - 1}")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise BackendError(f"--device {device!r}: MPS is not available on this machine")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        available = getattr(getattr(torch, parsed.type, None), "is_available", None)
        if available is None or not available():
            raise BackendError(f"--device {device!r}: {parsed.type} is not available on this machine")


def check_run_paths(output_path: Any, cache_dir: Any, save_model: Any) -> None:
    """The report, answer cache and saved-model folders, checked writable before the model loads (an explicit
    cache folder only: the default one, when unwritable, costs a warning and the cache, not the run)."""
    from mu_eval.paths import check_writable_file, check_writable_folder
    from mu_eval.report.io import report_path

    if output_path is not None:
        if Path(output_path).suffix != ".json":
            check_writable_folder(output_path, "output")
        check_writable_file(report_path(output_path), "output")
    if cache_dir is not None:
        check_writable_folder(cache_dir, "cache")
    if save_model is not None:
        check_writable_folder(save_model, "save-model")


def make_contexts(
    tasks: dict[str, Task],
    backend: Backend,
    data_directory: Path | None,
    limit: int | float | None,
    seed: int,
    reference: dict | None,
    *,
    subset_seed: int | None = None,
    max_new_tokens: int | None = None,
    generate: bool = True,
) -> dict[str, TaskContext]:
    """One context per task, all reading data from `data_directory`, formatting prompts for `backend` and
    sharing one input store with it."""
    chat = backend.chat_formatter()
    inputs = InputStore()
    backend.inputs = inputs
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
            inputs=inputs,
            subset_seed=subset_seed,
            max_new_tokens=max_new_tokens,
            generate=generate,
        )
        for name, task in tasks.items()
    }


def build_requests(
    tasks: dict[str, Task], contexts: dict[str, TaskContext], seed: int
) -> dict[str, Sequence[Request]]:
    """Every task's requests, each task built from the same seed."""
    requests = {}
    for name, task in tasks.items():
        seed_everything(seed)
        requests[name] = task.build_requests(contexts[name])
    return requests


def check_tasks_fit(backend: Backend, tasks: dict[str, Task], contexts: dict[str, TaskContext], seed: int) -> None:
    """The pre-flight ahead of work that comes before the sweep (an unlearning method's training): a request
    that does not fit the model's context stops the run now, not after the training. What the backend kept
    for the answers is released: the sweep fits the requests again."""
    requests = build_requests(tasks, contexts, seed)
    check_context(backend, requests)
    backend.release(request for some in requests.values() for request in some)


def run_tasks(
    engine: Engine, tasks: dict[str, Task], contexts: dict[str, TaskContext], seed: int
) -> dict[str, TaskResult]:
    """Build every task's requests, check that they fit the model's context (before any is answered), answer
    them in one pooled sweep, and let each task score its answers. A task whose requests carry a truncation
    rule gets `info.truncated`: how many of them the rule cut."""
    requests = {name: apply_generation_settings(tasks[name], some, contexts[name])
                for name, some in build_requests(tasks, contexts, seed).items()}
    sent = {name: [r for r in some if not is_generation(r) or contexts[name].generate]
            for name, some in requests.items()}
    truncated = engine.preflight(sent)
    answered = engine.run_tasks(sent, preflight=False)
    answers = {name: with_skipped_generations(requests[name], answered[name], contexts[name].generate)
               for name in requests}
    results = {name: task.process_results(answers[name], contexts[name]) for name, task in tasks.items()}
    for name, count in truncated.items():
        results[name].info["truncated"] = count
    for name, task in tasks.items():
        if not contexts[name].generate and any(map(is_generation, requests[name])):
            null_generation_metrics(results[name], task.generation_metrics or ())
    return results


def is_generation(request: Request) -> bool:
    return getattr(request, "kind", None) in ("generate", "visual_generate")


def apply_generation_settings(task: Task, requests: Sequence[Request], ctx: TaskContext) -> list[Request]:
    """`requests` with the run's cap on generated tokens; a scoring-only run refuses a task that asks for
    generations without saying which of its metrics they feed (a number from an empty text would be wrong)."""
    if not ctx.generate and task.generation_metrics is None and any(map(is_generation, requests)):
        raise TaskOptionError(f"task {task.name!r} generates text and does not declare which metrics use it "
                              "(Task.generation_metrics): it cannot run scoring-only; evaluate it with generation")
    cap = ctx.max_new_tokens
    if cap is None:
        return list(requests)
    return [_capped(r, cap) if is_generation(r) else r for r in requests]


def _capped(request: Any, cap: int) -> Any:
    """A generation request asking for at most `cap` new tokens."""
    if getattr(request, "max_new_tokens", None) is None or request.max_new_tokens <= cap:
        return request
    return dataclasses.replace(request, max_new_tokens=cap)


def with_skipped_generations(requests: Sequence[Request], answers: Sequence[Any], generate: bool) -> list[Any]:
    """The answers in request order, an empty text standing in for each generation that was not run."""
    if generate:
        return list(answers)
    given = iter(answers)
    return [GenerateResult("") if is_generation(r) else next(given) for r in requests]


def null_generation_metrics(result: TaskResult, names: Sequence[str]) -> None:
    """A scoring-only run's result: what came from the stand-in empty texts is null, with the reason."""
    for name in names:
        if name in result.metrics:
            old = result.metrics[name]
            result.metrics[name] = MetricValue.missing("not computed: scoring-only run (generate=False)", old.n,
                                                       old.higher_is_better)
        if name in result.items:
            result.items[name] = [None] * len(result.items[name])
    result.info["scoring_only"] = True
