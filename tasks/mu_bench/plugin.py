"""Registers the MU-Bench tasks through the `mu_eval` entry points, like any third-party plugin."""

from __future__ import annotations

from typing import Any

import mu_eval

from .classification import CLASSIFICATION_TASKS
from .generation import GENERATION_TASKS


@mu_eval.hookimpl
def register_tasks(register: Any) -> None:
    for task in CLASSIFICATION_TASKS + GENERATION_TASKS:
        register(task)
