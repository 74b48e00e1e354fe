"""Hook specifications. Each takes a `register` callback, in the style of the `llm` package.

A plugin module implements any of these with `@mu_eval.hookimpl` and is announced through the
`mu_eval` entry-point group of its distribution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "mu_eval"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: register(task_class_or_factory, name=None): name defaults to the class's `name` attribute.
RegisterCallback = Callable[..., None]


@hookspec
def register_tasks(register: RegisterCallback) -> None:
    """Register tasks: `register(TaskSubclass)` or `register(factory, name="task_name")`.

    A factory is called with the task's options as keyword arguments and returns a `mu_eval.Task`.
    """


@hookspec
def register_methods(register: RegisterCallback) -> None:
    """Register unlearning methods: `register(MethodSubclass)`; see `mu_eval.method.Method`."""


@hookspec
def register_attacks(register: RegisterCallback) -> None:
    """Register attacks and probes: `register(AttackSubclass)`; see `mu_eval.attack.Attack`."""


@hookspec
def register_metrics(register: RegisterCallback) -> None:
    """Register metric functions: `register(function, name="...", higher_is_better=True|False|None)`.

    A metric is a pure function of per-item values (and optionally reference values) returning a float.
    """


@hookspec
def register_backends(register: RegisterCallback) -> None:
    """Register model backends: `register(BackendSubclass)`; see `mu_eval.backends.base.Backend`."""


HOOK_KINDS: dict[str, str] = {
    "register_tasks": "tasks",
    "register_methods": "methods",
    "register_attacks": "attacks",
    "register_metrics": "metrics",
    "register_backends": "backends",
}


def describe(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__
