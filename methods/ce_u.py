"""CE-U (cross-entropy unlearning): at each answer token, fit the model's own distribution with the true token
removed, softmax(stopgrad(z) with z_y = -inf). The target moves with the model, so the loss only pushes the
true token's mass onto the others in their current proportions and has a floor at the distribution without
it, unlike gradient ascent, which has none.

The first `skip_tokens` answer tokens of each example are left out of the loss (n = 1 by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mu_eval.method import MethodOptionError
from mu_eval.training import Batch, answer_logits, answer_mask
from mu_eval.training_models import Reference

from .base import LLMMethod, TrainOptions


def ce_u_loss(logits: torch.Tensor, batch: Batch, skip_tokens: int = 1) -> torch.Tensor:
    """Mean over answer tokens (after the first `skip_tokens` of each example) of
    CE(logits, softmax(stopgrad(logits) with the true token at -inf))."""
    labels = batch.labels[:, 1:].clamp(min=0)
    mask = answer_mask(batch)
    mask = mask & (mask.cumsum(-1) > skip_tokens)
    target_logits = logits.detach().scatter(-1, labels[..., None], float("-inf"))
    target = torch.softmax(target_logits, dim=-1)
    per_token = -(target * torch.log_softmax(logits, dim=-1)).sum(-1)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


@dataclass
class CEUOptions(TrainOptions):
    #: Answer tokens at the start of each example that the loss leaves out.
    skip_tokens: int = 1
    retain_loss: str = "none"


class CEU(LLMMethod):
    """Cross-entropy towards the model's own (stop-gradient) distribution with the true token removed."""

    name = "ce_u"
    description = "CE-U: cross-entropy to the model's own distribution without the true token (no retain)."
    Options: ClassVar[type] = CEUOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.settings.skip_tokens < 0:
            raise MethodOptionError(f"method 'ce_u': skip_tokens={self.settings.skip_tokens} must be >= 0")

    def forget_loss(self, model: Any, batch: Any, reference: Reference | None) -> torch.Tensor:
        return ce_u_loss(answer_logits(model, batch), batch, self.settings.skip_tokens)
