"""Multi-step unlearning protocols: sequential requests (MUSE sustainability) and growing forget sets
(MUSE scalability). Each runs a method several times and calls back an evaluation after every step.

    steps = sequential_unlearning(model, tokenizer, "npo", split_folds(forget, 4), evaluate_fn, retain=retain)

`evaluate_fn(model, tokenizer, step)` may return anything (a `Report` from `mu_eval.evaluate` on the
in-memory pair, a dict of numbers); it lands in `ProtocolStep.result`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mu_eval.method import Method
from mu_eval.task import TextExample, UnlearningData
from mu_eval.unlearning import as_examples, instantiate_method, run_method

EvaluateFn = Callable[[Any, Any, int], Any]


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


def _fresh_method(method: str | Method, options: Mapping[str, Any] | None, seed: int) -> Method:
    """A new instance per step, so no state (losses, info) leaks from one request into the next."""
    if isinstance(method, Method):
        return copy.deepcopy(method)
    return instantiate_method(method, options, seed)


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
) -> list[ProtocolStep]:
    """Unlearn fold 1, evaluate, then fold 2 on the result, and so on: requests that arrive one by one.

    The model passed in ends unlearned on every fold (methods that return a new model are followed).
    """
    retain_examples = as_examples(retain)
    steps = [_baseline(model, tokenizer, evaluate)] if baseline else []
    for index, fold in enumerate(folds, start=1):
        data = UnlearningData(as_examples(fold), list(retain_examples))
        model, section = run_method(_fresh_method(method, options, seed), model, tokenizer, data)
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
            unlearned, section = run_method(_fresh_method(method, options, seed), model, tokenizer, data)
            result = evaluate(unlearned, tokenizer, index)
            folds_so_far = list(range(1, index + 1))
            steps.append(ProtocolStep(index, len(forget), folds_so_far, section["wall_time_s"], section, result))
    finally:
        model.load_state_dict(original)
    return steps
