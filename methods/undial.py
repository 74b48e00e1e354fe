"""UNDIAL: self-distillation towards the reference's logits with the true token's logit lowered by beta.

Only answer positions count: prompt and padding positions are masked (open-unlearning's version has no
ignore mask, so it also distils the prompt and the padding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mu_eval.training import answer_logits, answer_mask
from mu_eval.training_models import Reference

from .base import LLMMethod, TrainOptions


@dataclass
class UNDIALOptions(TrainOptions):
    beta: float = 10.0
    lr: float = 1e-4
    lora_r: int = 8
    lora_alpha: float = 16.0
    retain_loss: str = "none"


class UNDIAL(LLMMethod):
    """Per answer token: CE(student, softmax(z_ref - beta * onehot(y_t))), averaged over answer tokens."""

    name = "undial"
    description = "UNDIAL: distil the reference logits with the true token lowered by beta (LoRA r 8)."
    Options: ClassVar[type] = UNDIALOptions
    needs_reference: ClassVar[bool] = True

    def forget_loss(self, model: Any, batch: Any, reference: Reference | None) -> torch.Tensor:
        assert reference is not None
        logits = answer_logits(model, batch)
        target_logits = reference.logits(batch).float()
        labels = batch.labels[:, 1:].clamp(min=0)
        lowered = torch.full(labels[..., None].shape, -self.settings.beta, device=labels.device)
        target_logits.scatter_add_(-1, labels[..., None], lowered)
        target = torch.softmax(target_logits, dim=-1)
        per_token = -(target * torch.log_softmax(logits, dim=-1)).sum(-1)
        mask = answer_mask(batch)
        return (per_token * mask).sum() / mask.sum().clamp(min=1)
