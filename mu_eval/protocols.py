"""Multi-step unlearning protocols: sequential requests (MUSE sustainability) and growing forget sets
(MUSE scalability). Each runs a method several times and calls back an evaluation after every step.

    steps = sequential_unlearning(model, tokenizer, "npo", split_folds(forget, 4), evaluate_fn, retain=retain)

`evaluate_fn(model, tokenizer, step)` may return anything (a `Report` from `mu_eval.evaluate` on the
in-memory pair, a dict of numbers); it lands in `ProtocolStep.result`.

`mu_eval.evaluate(..., protocol=...)` and `mu-eval --protocol` take their folds from the run's tasks: a task
may define `unlearning_folds(ctx) -> list[list[TextExample]]` (disjoint folds, in request order; raise
NotImplementedError for "none of my own"); without one, the tasks' forget set is cut by `split_folds`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mu_eval.method import Method
from mu_eval.options import OptionError, option, parse_options
from mu_eval.seeding import seed_everything
from mu_eval.task import Task, TaskContext
from mu_eval.task_data import TextExample, UnlearningData
from mu_eval.unlearning import as_examples, instantiate_method, run_method

EvaluateFn = Callable[[Any, Any, int], Any]
#: Folds cut from the tasks' forget set when no task provides its own and `folds` is not given.
DEFAULT_FOLDS = 4


class ProtocolError(OptionError):
    """A protocol cannot run as asked: an unknown name or option, or folds that do not fit the data."""


@dataclass
class ProtocolStep:
    """One evaluation point: `step` 0 is the model before any unlearning (when `baseline` is on)."""

    step: int
    forget_size: int
    folds: list[int]
    wall_time_s: float
    method: dict[str, Any] | None
    result: Any

    def to_json(self) -> dict[str, Any]:
        result = self.result.data if hasattr(self.result, "data") else self.result
        return {
            "step": self.step,
            "forget_size": self.forget_size,
            "folds": self.folds,
            "wall_time_s": self.wall_time_s,
            "method": self.method,
            "result": result,
        }


def split_folds(examples: Sequence[Any], count: int) -> list[list[Any]]:
    """`count` contiguous folds of near-equal size (the first ones one larger when it does not divide)."""
    if count < 1 or count > len(examples):
        raise ValueError(f"cannot split {len(examples)} examples into {count} folds")
    size, extra = divmod(len(examples), count)
    folds, begin = [], 0
    for index in range(count):
        end = begin + size + (1 if index < extra else 0)
        folds.append(list(examples[begin:end]))
        begin = end
    return folds


def _fresh_method(method: str | Method, options: Mapping[str, Any] | None, seed: int, progress: bool) -> Method:
    """A new instance per step, so no state (losses, info) leaks from one request into the next."""
    instance = copy.deepcopy(method) if isinstance(method, Method) else instantiate_method(method, options, seed)
    instance.progress = progress
    return instance


def _unlearn_step(
    method: str | Method, options: Mapping[str, Any] | None, seed: int, progress: bool,
    model: Any, tokenizer: Any, data: UnlearningData,
) -> tuple[Any, dict[str, Any]]:
    """One step: a fresh method instance, every generator reseeded (as a single `--method` run does, so a step
    on the same data from the same weights trains exactly like that run), then the method on `data`."""
    instance = _fresh_method(method, options, seed, progress)
    seed_everything(seed)
    return run_method(instance, model, tokenizer, data)


def _baseline(model: Any, tokenizer: Any, evaluate: EvaluateFn) -> ProtocolStep:
    return ProtocolStep(0, 0, [], 0.0, None, evaluate(model, tokenizer, 0))


def sequential_unlearning(
    model: Any,
    tokenizer: Any,
    method: str | Method,
    folds: Sequence[Iterable[Any]],
    evaluate: EvaluateFn,
    *,
    retain: Iterable[Any] = (),
    options: Mapping[str, Any] | None = None,
    seed: int = 0,
    baseline: bool = True,
    progress: bool = True,
) -> list[ProtocolStep]:
    """Unlearn fold 1, evaluate, then fold 2 on the result, and so on: requests that arrive one by one.

    The model passed in ends unlearned on every fold (methods that return a new model are followed).
    """
    retain_examples = as_examples(retain)
    steps = [_baseline(model, tokenizer, evaluate)] if baseline else []
    for index, fold in enumerate(folds, start=1):
        data = UnlearningData(as_examples(fold), list(retain_examples))
        model, section = _unlearn_step(method, options, seed, progress, model, tokenizer, data)
        result = evaluate(model, tokenizer, index)
        steps.append(ProtocolStep(index, len(data.forget), [index], section["wall_time_s"], section, result))
    return steps


def growing_forget_sets(
    model: Any,
    tokenizer: Any,
    method: str | Method,
    folds: Sequence[Iterable[Any]],
    evaluate: EvaluateFn,
    *,
    retain: Iterable[Any] = (),
    options: Mapping[str, Any] | None = None,
    seed: int = 0,
    baseline: bool = True,
    progress: bool = True,
) -> list[ProtocolStep]:
    """Unlearn folds 1..k together for k = 1, 2, ..., each time from the original model: how the method
    scales with the size of the forget set. The model passed in is restored to its original weights."""
    retain_examples = as_examples(retain)
    fold_examples = [as_examples(fold) for fold in folds]
    original = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    steps = [_baseline(model, tokenizer, evaluate)] if baseline else []
    forget: list[TextExample] = []
    try:
        for index, fold in enumerate(fold_examples, start=1):
            forget = forget + fold
            model.load_state_dict(original)
            data = UnlearningData(list(forget), list(retain_examples))
            unlearned, section = _unlearn_step(method, options, seed, progress, model, tokenizer, data)
            result = evaluate(unlearned, tokenizer, index)
            folds_so_far = list(range(1, index + 1))
            steps.append(ProtocolStep(index, len(forget), folds_so_far, section["wall_time_s"], section, result))
    finally:
        model.load_state_dict(original)
    return steps


PROTOCOLS: dict[str, Callable[..., list[ProtocolStep]]] = {
    "sequential": sequential_unlearning,
    "growing": growing_forget_sets,
}


@dataclass(frozen=True)
class ProtocolSettings:
    """`--protocol-args`: how many folds to run, and whether step 0 evaluates the model before unlearning."""

    folds: int | None = option(None, minimum=1,
                               help=f"folds to run (default: all the tasks provide, else {DEFAULT_FOLDS})")
    baseline: bool = option(True, help="evaluate the model before any unlearning as step 0")

    def to_json(self) -> dict[str, Any]:
        return {"folds": self.folds, "baseline": self.baseline}


def protocol_function(name: str) -> Callable[..., list[ProtocolStep]]:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ProtocolError(f"unknown protocol {name!r}; choose {' or '.join(PROTOCOLS)}") from None


def parse_protocol_options(values: Mapping[str, Any] | None) -> ProtocolSettings:
    """Typed settings from `protocol_options` / `--protocol-args`; an unknown key is an error, not ignored."""
    try:
        return parse_options(ProtocolSettings, values, "the protocol")
    except OptionError as error:
        raise ProtocolError(str(error)) from None


def validate_protocol(name: str, options: Mapping[str, Any] | None) -> ProtocolSettings:
    """Fail on an unknown protocol or option before a model is loaded (the CLI calls this)."""
    protocol_function(name)
    return parse_protocol_options(options)


def task_folds(tasks: Mapping[str, Task], contexts: Mapping[str, TaskContext]) -> tuple[list[list[Any]], list[str]]:
    """The folds of the tasks that implement the `unlearning_folds` hook, fold i of each joined into one,
    and the names of those tasks (no folds and no names when none does)."""
    provided: dict[str, list[list[Any]]] = {}
    for name, task in tasks.items():
        try:
            folds = [as_examples(fold) for fold in task.unlearning_folds(contexts[name])]
        except NotImplementedError:
            continue
        if not folds or any(not fold for fold in folds):
            raise ProtocolError(f"task {name!r} returned no folds or an empty fold")
        provided[name] = folds
    counts = {len(folds) for folds in provided.values()}
    if len(counts) > 1:
        sizes = ", ".join(f"{name}: {len(folds)}" for name, folds in provided.items())
        raise ProtocolError(f"the tasks provide different numbers of folds ({sizes})")
    count = counts.pop() if counts else 0
    joined = [[example for folds in provided.values() for example in folds[index]] for index in range(count)]
    return joined, list(provided)


def choose_folds(
    tasks: Mapping[str, Task], contexts: Mapping[str, TaskContext], forget: Sequence[Any], settings: ProtocolSettings
) -> tuple[list[list[Any]], dict[str, Any]]:
    """The folds a protocol runs on, and a description of where they came from for the report.

    The tasks' own folds win (the first `settings.folds` of them when given); otherwise `forget` (the run's
    forget set) is cut into `settings.folds` (default DEFAULT_FOLDS) contiguous folds.
    """
    folds, providers = task_folds(tasks, contexts)
    if providers:
        count = settings.folds or len(folds)
        if count > len(folds):
            raise ProtocolError(f"folds={count}, but the tasks {', '.join(providers)} provide {len(folds)} folds")
        source = {"source": "tasks", "tasks": providers, "available": len(folds)}
        folds = folds[:count]
    else:
        count = settings.folds or DEFAULT_FOLDS
        try:
            folds = split_folds(list(forget), count)
        except ValueError as error:
            raise ProtocolError(f"{error}: lower --protocol-args folds") from None
        source = {"source": "split", "tasks": [], "available": count}
    return folds, {**source, "sizes": [len(fold) for fold in folds]}
