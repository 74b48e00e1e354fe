"""Gradient ascent on the forget set: alone (GradAscent), with retain NLL (GradDiff) or retain KL (KL-min)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mu_eval.training import nll_loss
from mu_eval.training_models import Reference

from .base import LLMMethod, TrainOptions


class _AscentLoss(LLMMethod):
    def forget_loss(self, model: Any, batch: Any, reference: Reference | None) -> torch.Tensor:
        """-NLL(D_f): the mean token cross-entropy of the forget answers, maximised."""
        return -nll_loss(model, batch)


@dataclass
class GradAscentOptions(TrainOptions):
    retain_loss: str = "none"


class GradAscent(_AscentLoss):
    """Gradient ascent on the forget answers, no retain term."""

    name = "grad_ascent"
    description = "GradAscent: maximise the NLL of the forget answers (no retain term)."
    Options: ClassVar[type] = GradAscentOptions


class GradDiff(_AscentLoss):
    """Gradient difference: ascent on forget plus alpha * NLL on retain."""

    name = "grad_diff"
    description = "GradDiff: -NLL(forget) + alpha * NLL(retain)."
    Options: ClassVar[type] = TrainOptions


@dataclass
class KLMinOptions(TrainOptions):
    retain_loss: str = "kl"


class KLMin(_AscentLoss):
    """Ascent on forget plus alpha * per-token KL(p_ref || p_theta) on retain answers."""

    name = "kl_min"
    description = "KL-min: -NLL(forget) + alpha * KL(p_ref || p_theta) on retain."
    Options: ClassVar[type] = KLMinOptions
