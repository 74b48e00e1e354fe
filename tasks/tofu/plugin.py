"""Registers `tofu_forget01`, `tofu_forget05` and `tofu_forget10`, as any third-party plugin would."""

from __future__ import annotations

from collections.abc import Callable

import mu_eval
from mu_eval.tasks.tofu.sources import SPLITS
from mu_eval.tasks.tofu.task import task_class


@mu_eval.hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    for split in SPLITS:
        register(task_class("tofu", split))
