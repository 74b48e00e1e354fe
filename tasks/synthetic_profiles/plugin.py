"""Registers `synthetic_forget01`, `synthetic_forget05` and `synthetic_forget10`."""

from __future__ import annotations

from collections.abc import Callable

import mu_eval
from mu_eval.tasks.synthetic_profiles.task import SyntheticProfilesTask
from mu_eval.tasks.tofu.sources import SPLITS
from mu_eval.tasks.tofu.task import task_class


@mu_eval.hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    for split in SPLITS:
        register(task_class("synthetic", split, SyntheticProfilesTask, "Synthetic profiles (offline TOFU)"))
