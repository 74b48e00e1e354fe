"""Registers the WMDP and MMLU tasks through the `mu_eval` entry points."""

from __future__ import annotations

from mu_eval.plugins import hookimpl

from .mmlu import Mmlu5Shot, MmluTask
from .wmdp import WmdpBio, WmdpChem, WmdpCyber, WmdpGroup


@hookimpl
def register_tasks(register):
    for task in (WmdpBio, WmdpChem, WmdpCyber, WmdpGroup, MmluTask, Mmlu5Shot):
        register(task)
