"""Running an unlearning method: forget/retain data from tasks, the method itself, the report's method section.

`apply_method` is what `evaluate(..., method=...)` and `mu-eval --method` call; `mu_eval.unlearn` is the
library entry point for a model held in memory or a checkpoint path. Both go through `run_method`, which
times the method and describes it the same way, so a report says which method ran, with which resolved
options, for how long and on how much data.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mu_eval.backend import Backend
from mu_eval.distributed import ParallelTrainingError, broadcast_from_main, check_launch, current_processes
from mu_eval.forget_check import checked_count, forget_loss_section, forget_set_loss
from mu_eval.method import Method, MethodError
from mu_eval.plugins import get_registry
from mu_eval.seeding import seed_everything
from mu_eval.task import Task, TaskContext
from mu_eval.task_data import ImageTextExample, TextExample, UnlearningData


# -- data ----------------------------------------------------------------------------------------------------
def as_examples(items: Iterable[Any]) -> list[TextExample]:
    """TextExamples from TextExamples, (prompt, answer) pairs, or dicts with prompt/question, answer and
    optionally alternates (other answers, for DPO) and group (the corpus or topic, for RMU's turns)."""
    examples = []
    for item in items:
        if isinstance(item, TextExample) or (hasattr(item, "prompt") and hasattr(item, "answer")):
            examples.append(item)  # classifier examples carry their own prompt/answer-like keys
        elif isinstance(item, Mapping):
            prompt = item.get("prompt", item.get("question", ""))
            alternates = tuple(str(a) for a in item.get("alternates", ()))
            examples.append(TextExample(str(prompt), str(item["answer"]), alternates, str(item.get("group", ""))))
        else:
            prompt, answer = item
            examples.append(TextExample(str(prompt), str(answer)))
    return examples


def _union(parts: Sequence[Sequence[TextExample]]) -> list[TextExample]:
    """The tasks' examples in order, without those an earlier task already gave (two TOFU splits share
    rows); repeats inside one task's set stay, since a corpus may hold a document twice on purpose."""
    seen: set[tuple[Any, ...]] = set()
    union: list[TextExample] = []
    for part in parts:
        union += [e for e in part if _example_key(e) not in seen]
        seen.update(_example_key(e) for e in part)
    return union


def _example_key(example: Any) -> tuple[Any, ...]:
    """Text and pictures: the same question on two pictures is two examples. A stored picture is known by
    its content hash; a raw picture object counts as itself."""
    images = tuple(getattr(i, "digest", None) or id(i) for i in getattr(example, "images", ()))
    return example.prompt, example.answer, images


def collect_unlearning_data(
    tasks: Mapping[str, Task], contexts: Mapping[str, TaskContext]
) -> tuple[UnlearningData, list[str]]:
    """The union of the forget/retain/holdout data of the run's tasks that have some (an example a previous
    task gave is not repeated), and the names of those tasks."""
    forget: list[list[TextExample]] = []
    retain: list[list[TextExample]] = []
    holdout: list[list[TextExample]] = []
    providers = []
    for name, task in tasks.items():
        try:
            data = task.unlearning_data(contexts[name])
        except NotImplementedError:
            continue
        providers.append(name)
        forget.append(list(data.forget))
        retain.append(list(data.retain))
        holdout.append(list(data.holdout))
    if not providers:
        raise MethodError(
            f"an unlearning method needs forget/retain data, and none of the tasks ({', '.join(tasks)}) "
            "provides any; add a task that does (e.g. a TOFU or synthetic-profiles forget split)"
        )
    data = UnlearningData(_union(forget), _union(retain), _union(holdout))
    if not data.forget:
        raise MethodError(f"the tasks {', '.join(providers)} returned an empty forget set")
    return data, providers


# -- running -------------------------------------------------------------------------------------------------
def instantiate_method(method: str | Method, options: Mapping[str, Any] | None, seed: int | None) -> Method:
    """A method instance from a registered name (or an instance, returned as is).

    A method with a `seed` option that the user left unset trains with the run's seed.
    """
    if isinstance(method, Method):
        if options:
            raise MethodError("pass options when naming the method, not with a method instance")
        return method
    method_class = get_registry().method(method)
    options = dict(options or {})
    declared = getattr(method_class, "Options", None)
    if seed is not None and "seed" not in options and dataclasses.is_dataclass(declared):
        if "seed" in {f.name for f in dataclasses.fields(declared)}:
            options["seed"] = seed
    return method_class(**options)


def validate_method(name: str, options: Mapping[str, Any] | None) -> None:
    """Fail on an unknown method or bad options now, before a model is loaded (the CLI calls this)."""
    instantiate_method(name, options, None)


def save_unlearned(model: Any, tokenizer: Any, directory: str | os.PathLike) -> str:
    """Write model and tokenizer with `save_pretrained`, loadable again with `--model DIRECTORY`."""
    path = Path(directory).expanduser()
    if not hasattr(model, "save_pretrained"):
        raise MethodError(f"the unlearned model ({type(model).__name__}) has no save_pretrained")
    processes = current_processes()  # data-parallel replicas hold the same weights: the main process saves
    if processes is None or processes.is_main:
        path.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    if processes is not None:
        processes.wait_for_everyone()
    return str(path)


def check_data_kind(method: Method, data: UnlearningData) -> None:
    """An LLM method needs text (or image+text) examples and a classifier method labelled inputs, and image+text
    examples need a method that declares `accepts_images`: say so in one line, not with a stack trace."""
    examples = data.forget + data.retain
    text = [isinstance(e, TextExample | ImageTextExample) for e in examples]
    if method.kind == "llm" and not all(text):
        raise MethodError(f"method {method.name!r} unlearns language models, but the run's tasks provided "
                          "classifier examples; choose a classifier method (mu-eval list methods)")
    if method.kind == "classifier" and any(text):
        raise MethodError(f"method {method.name!r} unlearns classifiers, but the run's tasks provided text "
                          "examples; choose a language-model method (mu-eval list methods)")
    images = sum(isinstance(e, ImageTextExample) for e in examples)
    if method.kind == "llm" and images and not method.accepts_images:
        reason = method.image_refusal or "it does not declare that it trains on images"
        raise MethodError(f"method {method.name!r} cannot train on image+text examples ({images} of the forget and "
                          f"retain examples are): {reason}; grad_ascent, grad_diff, kl_min and npo can "
                          "(docs/methods.md)")


def run_method(
    method: Method,
    model: Any,
    tokenizer: Any,
    data: UnlearningData,
    save_model: str | os.PathLike | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Run `method` and return the unlearned model and the report's method section.

    In data-parallel processes every process then holds the main process's weights (`broadcast_from_main`):
    a method that does not train through the shared loop (the classifier methods) runs whole in each process,
    and on GPUs nondeterministic kernels could leave the replicas apart, while the main process saves the
    model and evaluation shares the requests among the processes."""
    try:
        check_launch(method.name, method.kind)
    except ParallelTrainingError as error:
        raise MethodError(str(error)) from None
    check_data_kind(method, data)
    processes = current_processes()
    before = forget_set_loss(model, tokenizer, data.forget)
    started = time.perf_counter()
    unlearned = method.unlearn(model, tokenizer, data)
    wall_time = time.perf_counter() - started
    if unlearned is None:  # a method that edits in place and says nothing
        unlearned = model
    if processes is not None:
        broadcast_from_main(unlearned, processes.device)
    unlearned.eval()
    after = forget_set_loss(unlearned, tokenizer, data.forget) if before is not None else None
    checked = checked_count(data.forget)
    section: dict[str, Any] = {
        "name": method.name,
        "config": method.config(),
        "wall_time_s": wall_time,
        "data": {"forget": len(data.forget), "retain": len(data.retain), "holdout": len(data.holdout)},
        "info": dict(getattr(method, "info", {}) or {}),
        "forget_loss": forget_loss_section(method.name, before, after, checked),
        "saved_to": None,
    }
    if save_model is not None:
        section["saved_to"] = save_unlearned(unlearned, tokenizer, save_model)
    return unlearned, section


def apply_method(
    name: str,
    options: Mapping[str, Any],
    backend: Backend,
    tasks: Mapping[str, Task],
    contexts: Mapping[str, TaskContext],
    save_model: str | os.PathLike | None,
    seed: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Unlearn the backend's model on the run's forget/retain data; the backend then serves the new model."""
    method = instantiate_method(name, options, seed)
    method.progress = progress
    data, providers = collect_unlearning_data(tasks, contexts)
    seed_everything(seed)
    model, section = run_method(method, backend.torch_model, backend.tokenizer, data, save_model)
    backend.torch_model = model
    section["plugin"] = get_registry().get("methods", name).plugin
    section["data"]["tasks"] = providers
    return section
