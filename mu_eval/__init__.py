"""mu-eval: evaluate machine unlearning on the standard benchmarks, and attack the unlearned model.

The names here are the public surface a plugin or a training script uses; `evaluate` and `unlearn` import
their machinery (and torch) on first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mu_eval.attack import Attack, AttackContext, AttackError, ConfiguredAttack
from mu_eval.backend import Backend, BackendError, ContextLengthError
from mu_eval.method import ConfiguredMethod, Method, MethodError
from mu_eval.options import OptionError, option
from mu_eval.plugins import hookimpl
from mu_eval.report import Report, load_report
from mu_eval.requests import (
    Choose,
    ChooseResult,
    Classify,
    ClassifyResult,
    Generate,
    GenerateResult,
    Score,
    ScoreResult,
    Truncation,
    VisualGenerate,
)
from mu_eval.task import MetricValue, Task, TaskContext, TaskResult
from mu_eval.task_data import ForgetFact, ImageTextExample, MembershipSet, TextExample, UnlearningData

if TYPE_CHECKING:
    from mu_eval.api import evaluate, unlearn

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`evaluate` and `unlearn` on first use, so `import mu_eval` in a plugin does not import torch."""
    if name in ("evaluate", "unlearn"):
        from mu_eval import api

        return getattr(api, name)
    raise AttributeError(f"module 'mu_eval' has no attribute {name!r}")


__all__ = [
    "Attack", "AttackContext", "AttackError", "Backend", "BackendError", "Choose", "ChooseResult", "Classify",
    "ClassifyResult", "ConfiguredAttack", "ConfiguredMethod", "ContextLengthError", "ForgetFact", "Generate",
    "GenerateResult", "ImageTextExample", "MembershipSet", "Method", "MethodError", "MetricValue", "OptionError",
    "Report", "Score", "ScoreResult", "Task", "TaskContext", "TaskResult", "TextExample", "Truncation",
    "UnlearningData", "VisualGenerate", "evaluate", "hookimpl", "load_report", "option", "unlearn",
]
