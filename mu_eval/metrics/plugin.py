"""Registers the core metric functions, as any third-party plugin would."""

from __future__ import annotations

from mu_eval.metrics import mia, rouge
from mu_eval.plugins import hookimpl


@hookimpl
def register_metrics(register):
    register(rouge.rougeL_recall, name="rougeL_recall", higher_is_better=None)
    register(rouge.rougeL_f1, name="rougeL_f1", higher_is_better=None)
    register(rouge.rougeL_recall_rwku, name="rougeL_recall_rwku", higher_is_better=None)
    register(mia.auc, name="mia_auc", higher_is_better=None)
    register(mia.privleak, name="privleak", higher_is_better=None)
