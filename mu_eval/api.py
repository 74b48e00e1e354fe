"""The Python API: `evaluate` a model on tasks (optionally after unlearning, under a protocol, with attacks),
and `unlearn` a forget set from a model."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mu_eval.backend import Backend
from mu_eval.caller_state import preserved_state
from mu_eval.evaluation import ModelInput, check_limit, make_backend
from mu_eval.method import Method, MethodError
from mu_eval.protocol_runner import run_protocol
from mu_eval.report import Report
from mu_eval.run_options import RunOptions
from mu_eval.seeding import seed_everything
from mu_eval.single_run import run_single
from mu_eval.task import Task
from mu_eval.task_data import UnlearningData
from mu_eval.unlearning import as_examples, instantiate_method, run_method


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
    model_args: dict[str, Any] | None = None,
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

    `model` is a path or hub id, or an in-memory `(model, tokenizer)` pair (or pass `tokenizer=`). The
    caller's state is put back afterwards: the global random generators (Python, NumPy, torch CPU and CUDA)
    continue where they were, and an in-memory model keeps each module's train/eval mode, its devices,
    dtypes and `requires_grad` flags, and its tokenizer its padding and truncation settings. The answer cache is
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
    with preserved_state(*_callers_objects(model)):
        if protocol is not None:
            return run_protocol(model, tasks, options, protocol=protocol, protocol_options=protocol_options,
                                method=method, method_options=method_options, attacks=attacks, save_model=save_model)
        return run_single(model, tasks, options, attacks=attacks, attack_options=attack_options, method=method,
                          method_options=method_options, save_model=save_model)


def _callers_objects(model: ModelInput) -> tuple[Any, Any]:
    """The caller's torch model and tokenizer, when the caller handed them in (None for a path)."""
    if isinstance(model, tuple):
        return model
    if isinstance(model, Backend):
        return getattr(model, "torch_model", None), model.tokenizer
    return None, None


@dataclass
class UnlearningResult:
    """What `mu_eval.unlearn` returns: the unlearned model, its tokenizer and the method section."""

    model: Any
    tokenizer: Any
    method: dict[str, Any] = field(default_factory=dict)


def unlearn(
    model: Any,
    tokenizer: Any = None,
    method: str | Method | None = None,
    *,
    forget: Iterable[Any],
    retain: Iterable[Any] = (),
    holdout: Iterable[Any] = (),
    save_model: str | os.PathLike | None = None,
    seed: int = 0,
    device: str | None = None,
    model_args: dict[str, Any] | None = None,
    **options: Any,
) -> UnlearningResult:
    """Unlearn `forget` from a model (a path or hub id, or an in-memory model with its tokenizer).

    An in-memory model is changed in place when the method allows it; its modes, devices, dtypes and
    `requires_grad` flags, the tokenizer's settings and the global random generators are put back.
    Prompts are used verbatim: format them with the model's chat template first if it has one. `options` are
    the method's own options.
    """
    if method is None:
        raise MethodError("name the unlearning method, e.g. unlearn(model, tokenizer, 'npo', forget=...)")
    if isinstance(model, str | os.PathLike):
        backend = make_backend(str(model), model_args=model_args, device=device)
        model, tokenizer = backend.torch_model, backend.tokenizer
    elif tokenizer is None:
        raise MethodError("an in-memory model needs its tokenizer")
    data = UnlearningData(as_examples(forget), as_examples(retain), as_examples(holdout))
    if not data.forget:
        raise MethodError("the forget set is empty")
    instance = instantiate_method(method, options, seed)
    with preserved_state(model, tokenizer):
        seed_everything(seed)
        unlearned, section = run_method(instance, model, tokenizer, data, save_model)
    return UnlearningResult(unlearned, tokenizer, section)
