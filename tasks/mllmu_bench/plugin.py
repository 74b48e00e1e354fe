"""Registers the MLLMU-Bench tasks through the `mu_eval` entry points, like any third-party plugin."""

from __future__ import annotations

from typing import Any

import mu_eval

from .task import MLLMU_TASKS


@mu_eval.hookimpl
def register_tasks(register: Any) -> None:
    for task in MLLMU_TASKS:
        register(task)
