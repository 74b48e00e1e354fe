"""The attack interface: probes that act on an evaluated model and write their own report section."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mu_eval.backend import Backend
from mu_eval.options import OptionError, parse_options
from mu_eval.task import Task, TaskContext, TaskResult


class AttackError(Exception):
    """An attack cannot run: what it needs is missing (a reference model, CUDA for bitsandbytes, ...)."""


class AttackOptionError(AttackError, OptionError):
    """An option the attack does not declare, or a value that does not convert to the declared type."""


@dataclass
class AttackContext:
    """What an attack may use.

    `evaluate(backend, tasks)` re-runs tasks on another backend (a relearned, quantized or recovered
    model) through a fresh engine and returns their results; `results` holds this run's own results;
    `answer(requests)` answers requests on this run's model through this run's engine, so requests the
    tasks already asked cost no forward pass. `limit` is the run's `--limit`: the helpers of
    `mu_eval.attack_inputs` already cut what they take from a task to its first `limit` items (the
    task contexts carry it too); an attack that reads a task's data some other way cuts it with
    `attack_inputs.limited`.
    """

    backend: Backend
    tasks: dict[str, Task]
    contexts: dict[str, TaskContext]
    results: dict[str, TaskResult]
    evaluate: Callable[[Backend, dict[str, Task]], dict[str, TaskResult]]
    answer: Callable[[list[Any]], list[Any]]
    reference: dict[str, Any] | None = None
    seed: int = 1234
    device: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: Whether attacks may show progress bars (false under `--quiet`).
    progress: bool = True
    #: First N items of every set an attack draws from a task (None: all); recorded in each attack section.
    limit: int | float | None = None


class Attack:
    """Base class for attacks. Subclasses set `name` and implement `run`, returning a JSON-able section.

    Subclass `ConfiguredAttack` to have options declared, converted and checked.
    """

    name: str = ""
    description: str = ""
    #: The attack's options (`--attack-args`), as a dataclass; None: it takes none.
    Options: ClassVar[type | None] = None

    def __init__(self, **options: Any) -> None:
        self.options = options

    def run(self, ctx: AttackContext) -> dict[str, Any]:
        raise NotImplementedError


class ConfiguredAttack(Attack):
    """An attack with a dataclass `Options`, parsed (and checked) when the attack is created; `self.config`
    holds every option's resolved value by name."""

    Options: ClassVar[type | None] = None

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.config = self.settings(options)

    def settings(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """The parsed options of this run (the context's when it carries any, else the constructor's)."""
        if options is None or (not options and hasattr(self, "config")):
            return dict(self.config)
        if self.Options is None:
            if options:
                raise AttackOptionError(f"attack {self.name!r} takes no options")
            return {}
        try:
            return dataclasses.asdict(parse_options(self.Options, options, f"attack {self.name!r}"))
        except OptionError as error:
            raise AttackOptionError(str(error)) from None
