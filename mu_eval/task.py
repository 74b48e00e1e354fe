"""The task interface: rows in, requests out; results in, metric values out. A task never calls a model.

Besides `build_requests` and `process_results`, a task may implement the optional hooks declared on `Task`
(each with its default): the data unlearning methods train on, the folds of multi-step protocols, and what
attacks draw from it (membership sets, facts, which metrics measure forgetting).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from mu_eval.data import DatasetSpec
from mu_eval.inputs import InputStore
from mu_eval.options import OptionError, parse_options
from mu_eval.requests import Request
from mu_eval.task_data import (
    ClassifierExample,
    ClassifierUnlearningData,
    ForgetFact,
    ImageTextExample,
    MembershipSet,
    TextExample,
    UnlearningData,
)

T = TypeVar("T")

__all__ = [
    "ClassifierExample", "ClassifierUnlearningData", "ForgetFact", "ImageTextExample", "MembershipSet",
    "MetricValue", "Task", "TaskContext", "TaskOptionError", "TaskResult", "TextExample", "UnlearningData",
]


class TaskOptionError(OptionError):
    """A task rejected its options (`--task-args`): a usage error, reported in one line."""


@dataclass
class MetricValue:
    """One reported number with what a reader needs to judge it.

    `value` is None when the metric cannot be computed (a missing reference, say); `reason` then says why.
    """

    value: float | None
    n: int
    higher_is_better: bool | None
    stderr: float | None = None
    reason: str | None = None
    variant: str | None = None

    def to_json(self) -> dict:
        data: dict[str, Any] = {
            "value": _finite_or_none(self.value),
            "n": self.n,
            "higher_is_better": self.higher_is_better,
        }
        if self.stderr is not None:
            data["stderr"] = _finite_or_none(self.stderr)
        if self.reason is not None:
            data["reason"] = self.reason
        if self.variant is not None:
            data["variant"] = self.variant
        return data

    @classmethod
    def missing(cls, reason: str, n: int = 0, higher_is_better: bool | None = None) -> MetricValue:
        return cls(value=None, n=n, higher_is_better=higher_is_better, reason=reason)


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class TaskResult:
    """What a task reports: metric values, per-item arrays (kept so that this run can serve as another
    run's `--reference`) and optional per-sample records for `--log-samples`."""

    metrics: dict[str, MetricValue]
    #: Per-item values by name: numbers, or None where an item has none.
    items: dict[str, list[Any]] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskContext:
    """Everything a task may use besides its own configuration.

    `chat` formats one user turn (and optionally the assistant's answer) with the model's chat template,
    or with the plain fallback when the model has none or templates are turned off.
    """

    load: Callable[[DatasetSpec], list[dict]]
    chat: Callable[[str], str]
    uses_chat_template: bool
    #: `--limit`: a number of items per set, or a fraction of each set (0 < f < 1, rounded up, as lm-eval)
    limit: int | float | None = None
    seed: int = 1234
    reference: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: `truncate_tokens(text, n)`: `text` cut to its first n tokens of the model's tokenizer (special tokens
    #: added and counted, decoded without them); None when the backend cannot tokenize.
    truncate_tokens: Callable[[str, int], str] | None = None
    #: The run's store of raw inputs (pictures, audio): `classify_request`/`visual_generate_request` put a
    #: request's inputs here, and the run's backend reads them back by content hash.
    inputs: InputStore = field(default_factory=InputStore)
    #: With `limit`: the seed of a random subset of `limit` rows per set (kept in dataset order), the same for
    #: every run with the same seed and set size, instead of the first `limit` rows; None: the first rows.
    subset_seed: int | None = None
    #: The run's cap on generated tokens (`evaluate(max_new_tokens=)`); the harness applies it to every
    #: `Generate` request, so a task need not read it.
    max_new_tokens: int | None = None
    #: False in a scoring-only run (`evaluate(generate=False)`): `Generate` requests are not sent to the model
    #: and the task's `generation_metrics` are reported as null; a task may skip building them.
    generate: bool = True

    def reference_items(self, task_name: str) -> dict[str, list] | None:
        """Per-item arrays of the same task in the reference report, or None when there is none."""
        if not self.reference:
            return None
        task = self.reference.get("tasks", {}).get(task_name)
        if task is None:
            return None
        return task.get("items")

    def limited(self, rows: Sequence[T]) -> list[T]:
        """What `--limit N` evaluates of each set: the first `limit` rows, or with `subset_seed` a seeded random
        choice of `limit` rows in dataset order (all rows without a limit). The choice depends only on the
        seed and the set's size, so a target and its reference evaluated alike score the same rows. A
        fractional limit (0 < f < 1) is that share of the set, rounded up, as lm-eval's `--limit 0.1`."""
        kept = list(rows)
        count = limit_count(len(kept), self.limit)
        if count >= len(kept):
            return kept
        if self.subset_seed is None:
            return kept[:count]
        chosen = sorted(random.Random(f"{self.subset_seed}/{len(kept)}").sample(range(len(kept)), count))
        return [kept[index] for index in chosen]


def limit_count(size: int, limit: int | float | None) -> int:
    """How many of `size` rows a limit keeps: all without one, a share rounded up for a fraction below 1."""
    if limit is None:
        return size
    if isinstance(limit, float) and limit < 1:
        return min(size, math.ceil(size * limit))
    return min(size, int(limit))


def cut_to_limit(rows: Sequence[T], limit: int | float | None) -> list[T]:
    """The first rows a limit keeps (see `limit_count`)."""
    kept = list(rows)
    return kept[: limit_count(len(kept), limit)]


class Task:
    """Base class for tasks. Subclasses set `name` and implement `build_requests` and `process_results`.

    One instance serves one run, so a task may keep what it built in `build_requests` on `self` and
    read it back in `process_results`; the engine hands results back in the order of the requests.

    A task with options declares them as a dataclass `Options` (see `mu_eval.options`); they are parsed
    into `self.settings` when the task is made, and an unknown key or a bad value is a `TaskOptionError`.
    """

    name: str = ""
    description: str = ""
    #: Datasets this task reads, for `mu-eval list tasks` and error messages.
    datasets: tuple[DatasetSpec, ...] = ()
    #: The task's options (`--task-args`), as a dataclass; None: it takes none.
    Options: ClassVar[type | None] = None
    #: Names of the metrics that measure how much of the forget set the model still knows; attacks that
    #: change the model (relearning, quantization, recovered weights) track them. Empty: every metric.
    forget_metrics: tuple[str, ...] = ()
    #: Names of the metrics (and per-item arrays) computed from generated text; a scoring-only run
    #: (`evaluate(generate=False)`) reports them as null. None: not declared, and a scoring-only run refuses
    #: the task if it asks for generations.
    generation_metrics: tuple[str, ...] | None = None

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.settings: Any = None
        if self.Options is not None:
            try:
                self.settings = parse_options(self.Options, options, f"task {self.name!r}")
            except OptionError as error:
                raise TaskOptionError(str(error)) from None
        elif options:
            raise TaskOptionError(f"task {self.name!r} takes no options (got {', '.join(map(repr, options))})")

    def build_requests(self, ctx: TaskContext) -> Sequence[Request]:
        """The task's requests, in an order it will recognise in `process_results`."""
        raise NotImplementedError

    def process_results(self, results: list[Any], ctx: TaskContext) -> TaskResult:
        """Metric values from the answers to `build_requests`' requests, in the same order. The answers are
        the `Result` types of the request kinds the task asked (`ScoreResult` for `Score`, ...)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The task's configuration as it goes into the report."""
        return {
            "name": self.name,
            "datasets": [spec.describe() for spec in self.datasets],
            "options": dict(self.options),
        }

    def option_values(self) -> dict[str, Any]:
        """Every option with its resolved value, defaults included (empty for a task without options)."""
        return dataclasses.asdict(self.settings) if self.settings is not None else {}

    # -- optional hooks: each raises NotImplementedError ("not provided") by default ---------------------------
    def unlearning_data(self, ctx: TaskContext) -> UnlearningData:
        """Forget, retain (and holdout) examples for methods and attacks that train."""
        raise NotImplementedError(f"task {self.name!r} provides no forget/retain data for unlearning")

    def unlearning_folds(self, ctx: TaskContext) -> list[list[Any]]:
        """Disjoint forget folds, in request order, for multi-step protocols (`--protocol`); without them
        the protocol cuts the tasks' forget set into equal folds."""
        raise NotImplementedError(f"task {self.name!r} provides no folds of its own")

    def membership_requests(self, ctx: TaskContext) -> MembershipSet:
        """Member and non-member `Score` requests for membership inference. Default (by the attacks):
        forget vs holdout examples of `unlearning_data`."""
        raise NotImplementedError

    def forget_facts(self, ctx: TaskContext) -> list[ForgetFact]:
        """Facts of the forget set for the generation attacks. Default (by the attacks): one fact per forget
        question of `unlearning_data`, the whole answer as the gold string."""
        raise NotImplementedError

    def retain_facts(self, ctx: TaskContext) -> list[ForgetFact]:
        """Facts the model should keep, for the generation attacks; default as `forget_facts`, from retain."""
        raise NotImplementedError
