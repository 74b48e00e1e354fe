"""mu-eval: evaluate machine unlearning on the standard benchmarks, and attack the unlearned model."""

from mu_eval.attack import Attack, AttackContext, AttackError
from mu_eval.method import Method
from mu_eval.plugins import hookimpl
from mu_eval.report import Report, load_report
from mu_eval.requests import Choose, ChooseResult, Generate, GenerateResult, Score, ScoreResult
from mu_eval.task import MetricValue, Task, TaskContext, TaskResult, TextExample, UnlearningData

__version__ = "0.1.0"


def evaluate(*args, **kwargs):
    """Evaluate a model on tasks; see `mu_eval.api.evaluate` (imported lazily: it pulls in torch)."""
    from mu_eval.api import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def unlearn(*args, **kwargs):
    """Unlearn a forget set from a model; see `mu_eval.unlearning.unlearn` (imported lazily: it pulls in torch)."""
    from mu_eval.unlearning import unlearn as _unlearn

    return _unlearn(*args, **kwargs)


__all__ = [
    "Attack", "AttackContext", "AttackError", "Choose", "ChooseResult", "Generate", "GenerateResult",
    "Method", "MetricValue", "Report", "Score", "ScoreResult", "Task", "TaskContext", "TaskResult",
    "TextExample", "UnlearningData", "evaluate", "hookimpl", "load_report", "unlearn",
]
