"""Helpers shared by the attacks: loading a second model, answering on it, re-evaluating a modified copy."""

from __future__ import annotations

import copy
from typing import Any

from mu_eval.attack import AttackContext, AttackError
from mu_eval.backends.base import Backend, BackendError
from mu_eval.engine import Engine
from mu_eval.requests import Request, Result
from mu_eval.task import Task, TaskResult


def require_torch_model(ctx: AttackContext, attack: str) -> Any:
    model = getattr(ctx.backend, "torch_model", None)
    if model is None or getattr(ctx.backend, "tokenizer", None) is None:
        raise AttackError(
            f"attack {attack!r} works on the model's weights, but backend {ctx.backend.name!r} exposes no "
            "torch model and tokenizer; use the 'hf' backend"
        )
    return model


def load_backend(path: str, ctx: AttackContext, attack: str, role: str) -> Backend:
    """A Hugging Face backend for a second model (reference, original, oracle, attacker)."""
    from mu_eval.backends.hf import HFBackend

    use_chat_template = getattr(ctx.backend, "use_chat_template", True)
    try:
        return HFBackend.from_pretrained(path, device=ctx.device, use_chat_template=use_chat_template)
    except (BackendError, OSError, ValueError) as error:
        raise AttackError(f"attack {attack!r}: cannot load the {role} model {path!r}: {error}") from error


def answer_on(backend: Backend, requests: list[Request]) -> list[Result]:
    """Answers from another model, through a fresh engine (batched and deduplicated like the run's)."""
    return Engine(backend, progress=False).run(requests)


def backend_for(model: Any, ctx: AttackContext, model_id: str) -> Backend:
    from mu_eval.backends.hf import HFBackend

    use_chat_template = getattr(ctx.backend, "use_chat_template", True)
    return HFBackend.from_model(model, ctx.backend.tokenizer, model_id=model_id, use_chat_template=use_chat_template)


def evaluate_model(ctx: AttackContext, model: Any, tasks: dict[str, Task], model_id: str) -> dict[str, TaskResult]:
    """Run `tasks` on an in-memory model; the model is handed back in the train/eval mode it had."""
    backend = backend_for(model, ctx, model_id)
    try:
        return ctx.evaluate(backend, tasks)
    finally:
        backend.close()


def evaluate_backend(ctx: AttackContext, backend: Backend, tasks: dict[str, Task]) -> dict[str, TaskResult]:
    try:
        return ctx.evaluate(backend, tasks)
    finally:
        backend.close()


def plain_copy(model: Any) -> Any:
    """A deep copy of the model with any peft adapter merged in, so weights can be edited or trained."""
    duplicate = copy.deepcopy(model)
    if hasattr(duplicate, "merge_and_unload") and hasattr(duplicate, "peft_config"):
        duplicate = duplicate.merge_and_unload()
    return duplicate


def free_memory() -> None:
    """Collect dropped models and release cached GPU memory (callers `del` their references first)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
