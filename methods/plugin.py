"""Registers the built-in LLM unlearning methods, through the `mu_eval` entry points like any plugin."""

from __future__ import annotations

from typing import Any

import mu_eval

from .dpo import IdkDPO
from .gradient import GradAscent, GradDiff, KLMin
from .npo import NPO, SimNPO
from .rmu import RMU
from .task_vector import TaskVector
from .undial import UNDIAL
from .whp import WHP

LLM_METHODS = (GradAscent, GradDiff, KLMin, NPO, SimNPO, IdkDPO, RMU, UNDIAL, TaskVector, WHP)


@mu_eval.hookimpl
def register_methods(register: Any) -> None:
    for method in LLM_METHODS:
        register(method)
