"""Helpers shared by the attacks: loading a second model, answering on it, re-evaluating a modified copy."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from mu_eval import attack_inputs
from mu_eval.attack import AttackContext, AttackError
from mu_eval.backend import Backend, BackendError
from mu_eval.engine import Engine
from mu_eval.requests import Request, Result
from mu_eval.task import Task, TaskResult
from mu_eval.task_data import ForgetFact


def require_torch_model(ctx: AttackContext, attack: str) -> Any:
    model = getattr(ctx.backend, "torch_model", None)
    if model is None or getattr(ctx.backend, "tokenizer", None) is None:
        raise AttackError(
            f"attack {attack!r} works on the model's weights, but backend {ctx.backend.name!r} exposes no "
            "torch model and tokenizer; use the 'hf' backend"
        )
    return model


def facts_by_task(
    ctx: AttackContext, attack: str, with_retain: bool = True
) -> tuple[dict[str, tuple[list[ForgetFact], list[ForgetFact]]], dict[str, str]]:
    """Per task with forget facts, (forget facts, retain facts or [] without `with_retain`), and why the other
    tasks were skipped; an AttackError when no task has forget facts."""
    gathered: dict[str, tuple[list[ForgetFact], list[ForgetFact]]] = {}
    skipped: dict[str, str] = {}
    for task_name, task in ctx.tasks.items():
        task_ctx = ctx.contexts[task_name]
        facts = attack_inputs.forget_facts(task, task_ctx)
        if not facts.value:
            skipped[task_name] = facts.reason or "no forget facts"
            continue
        retain = (attack_inputs.retain_facts(task, task_ctx).value or []) if with_retain else []
        gathered[task_name] = (facts.value, retain)
    if not gathered:
        raise AttackError(f"attack {attack!r} needs forget facts (forget_facts(ctx) or unlearning_data(ctx)): "
                          + "; ".join(skipped.values()))
    return gathered, skipped


def load_backend(path: str, ctx: AttackContext, attack: str, role: str) -> Backend:
    """A Hugging Face backend for a second model (reference, original, oracle, attacker)."""
    from mu_eval.backends.hf import HFBackend

    use_chat_template = getattr(ctx.backend, "use_chat_template", True)
    try:
        return HFBackend.from_pretrained(path, device=ctx.device, use_chat_template=use_chat_template)
    except (BackendError, OSError, ValueError) as error:
        raise AttackError(f"attack {attack!r}: cannot load the {role} model {path!r}: {error}") from error


def answer_on(backend: Backend, requests: Sequence[Request]) -> list[Result]:
    """Answers from another model, through a fresh engine (batched and deduplicated like the run's)."""
    return Engine(backend, progress=False).run(list(requests))


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
