"""Hook specifications. Each takes a `register` callback, in the style of the `llm` package.

A plugin module implements any of these with `@mu_eval.hookimpl` and is announced through the
`mu_eval` entry-point group of its distribution (docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pluggy

from mu_eval.attack import Attack
from mu_eval.backend import Backend
from mu_eval.method import Method
from mu_eval.task import Task

PROJECT_NAME = "mu_eval"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class RegisterTask(Protocol):
    """`register(TaskSubclass)`, or `register(factory, name="task_name", options=OptionsDataclass)` for a
    factory called with the task's options as keyword arguments (`options` declares which it accepts)."""

    def __call__(self, task: type[Task] | Callable[..., Task], name: str | None = None, *,
                 options: type | None = None) -> None: ...


class RegisterMethod(Protocol):
    def __call__(self, method: type[Method], name: str | None = None) -> None: ...


class RegisterAttack(Protocol):
    def __call__(self, attack: type[Attack], name: str | None = None) -> None: ...


class RegisterMetric(Protocol):
    """`register(function, name="...", higher_is_better=True|False|None)`."""

    def __call__(self, metric: Callable[..., float], name: str | None = None, *,
                 higher_is_better: bool | None = None) -> None: ...


class RegisterBackend(Protocol):
    def __call__(self, backend: type[Backend], name: str | None = None) -> None: ...


@hookspec
def register_tasks(register: RegisterTask) -> None:
    """Register tasks: `register(TaskSubclass)` or `register(factory, name="task_name", options=Options)`.

    A factory is called with the task's options as keyword arguments and returns a `mu_eval.Task`.
    """


@hookspec
def register_methods(register: RegisterMethod) -> None:
    """Register unlearning methods: `register(MethodSubclass)`; see `mu_eval.method.Method`."""


@hookspec
def register_attacks(register: RegisterAttack) -> None:
    """Register attacks and probes: `register(AttackSubclass)`; see `mu_eval.attack.Attack`."""


@hookspec
def register_metrics(register: RegisterMetric) -> None:
    """Register metric functions: `register(function, name="...", higher_is_better=True|False|None)`.

    A metric is a pure function of per-item values (and optionally reference values) returning a float.
    """


@hookspec
def register_backends(register: RegisterBackend) -> None:
    """Register model backends: `register(BackendSubclass)`; see `mu_eval.backend.Backend`."""


HOOK_KINDS: dict[str, str] = {
    "register_tasks": "tasks",
    "register_methods": "methods",
    "register_attacks": "attacks",
    "register_metrics": "metrics",
    "register_backends": "backends",
}


def describe(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__
