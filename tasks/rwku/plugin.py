"""Registers the RWKU tasks through the `mu_eval` entry points."""

from __future__ import annotations

from mu_eval.plugins import hookimpl

from .task import RwkuBatchTask, RwkuTask


@hookimpl
def register_tasks(register):
    register(RwkuTask)
    register(RwkuBatchTask)
