"""Token-weighted gradient ascent: WGA and SatImp scale each answer token's cross-entropy by a weight
computed from its own probability and held constant (stop-gradient), then ascend the weighted mean.

WGA's weight p^beta fades tokens the model has already forgotten; SatImp's p^beta1 (1-p)^beta2 also fades
tokens it is sure of. Neither needs a reference model, so none is copied (the reference code deep-copies
one that it never uses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mu_eval.training import Batch, answer_logits, logprobs_from_logits
from mu_eval.training_models import Reference

from .base import LLMMethod, TrainOptions


def weighted_ascent(logits: torch.Tensor, batch: Batch, weight: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """-mean_t[stopgrad(weight(p_t)) * CE_t] over the batch's answer tokens (prompt and padding masked)."""
    logp, mask = logprobs_from_logits(logits, batch)
    weights = weight(logp.detach().exp())
    return (weights * logp * mask).sum() / mask.sum().clamp(min=1)


def wga_loss(logits: torch.Tensor, batch: Batch, beta: float) -> torch.Tensor:
    """WGA: -mean_t[stopgrad(p_t)^beta * CE_t]."""
    return weighted_ascent(logits, batch, lambda p: p**beta)


def satimp_loss(logits: torch.Tensor, batch: Batch, beta1: float, beta2: float) -> torch.Tensor:
    """SatImp: -mean_t[stopgrad(p_t^beta1 (1 - p_t)^beta2) * CE_t]."""
    return weighted_ascent(logits, batch, lambda p: p**beta1 * (1 - p) ** beta2)


@dataclass
class WGAOptions(TrainOptions):
    beta: float = 1.0
    epochs: float = 5.0


class WGA(LLMMethod):
    """Weighted gradient ascent: each forget token's ascent step is scaled by its probability^beta."""

    name = "wga"
    description = "WGA: gradient ascent with each answer token weighted by stopgrad(p)^beta (+ retain NLL)."
    Options: ClassVar[type] = WGAOptions

    def forget_loss(self, model: Any, batch: Any, reference: Reference | None) -> torch.Tensor:
        return wga_loss(answer_logits(model, batch), batch, self.settings.beta)


@dataclass
class SatImpOptions(TrainOptions):
    beta1: float = 5.0
    beta2: float = 1.0
    forget_weight: float = 0.1


class SatImp(LLMMethod):
    """Saturation-importance ascent: token weights p^beta1 (1-p)^beta2, forget weight 0.1."""

    name = "satimp"
    description = "SatImp: gradient ascent weighted by stopgrad(p^beta1 (1-p)^beta2) per token (+ retain NLL)."
    Options: ClassVar[type] = SatImpOptions

    def forget_loss(self, model: Any, batch: Any, reference: Reference | None) -> torch.Tensor:
        options = self.settings
        return satimp_loss(answer_logits(model, batch), batch, options.beta1, options.beta2)
