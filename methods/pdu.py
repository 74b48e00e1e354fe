"""PDU (primal-dual unlearning): flatten the logits on forget answers, subject to NLL(retain) <= epsilon.

The Lagrangian gamma * L_forget + lambda * (L_retain - epsilon) is minimised over the weights by the shared
loop while lambda follows dual ascent, lambda <- max(0, lambda + eta (L_retain - epsilon)), once per
optimizer step with the mean retain loss of that step's micro-batches. lambda starts at `retain_weight`.

Warm-up: the "5 warm-up epochs" of the recipe hold lambda at its start value for the first
`dual_warmup_epochs` epochs (counted in optimizer steps, as `epochs` is) and then update it every step.
The learning-rate warm-up is the shared `warmup_ratio`, unchanged.

The forget loss averages (max logit - mean logit)^2 over the positions that predict answer tokens; the
reference code applies its answer mask to unshifted logits, one position late.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mu_eval.method import MethodOptionError
from mu_eval.task import UnlearningData
from mu_eval.training import Batch, answer_logits, answer_mask
from mu_eval.training_models import Reference

from .base import LLMMethod, TrainOptions, epochs_to_steps


def flatten_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """mean over answer tokens of (max_v z_v - mean_v z_v)^2: zero only for a uniform next-token distribution."""
    margin = logits.max(dim=-1).values - logits.mean(dim=-1)
    mask = answer_mask(batch)
    return (margin.square() * mask).sum() / mask.sum().clamp(min=1)


def dual_update(dual: float, retain_loss: float, epsilon: float, step_size: float) -> float:
    """One projected dual-ascent step on the constraint L_retain <= epsilon."""
    return max(0.0, dual + step_size * (retain_loss - epsilon))


@dataclass
class PDUOptions(TrainOptions):
    """`epsilon` (the retain NLL bound) has no default; `retain_weight` is lambda's start value."""

    epsilon: float | None = None
    dual_step_size: float = 1.0
    dual_warmup_epochs: float = 5.0


class PDU(LLMMethod):
    """min gamma * flatten(forget) s.t. NLL(retain) <= epsilon, by primal descent and dual ascent on lambda."""

    name = "pdu"
    description = "PDU: flatten forget logits subject to NLL(retain) <= epsilon (primal-dual; epsilon required)."
    Options: ClassVar[type] = PDUOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        settings = self.settings
        if settings.epsilon is None:
            raise MethodOptionError(
                "method 'pdu' needs epsilon, the bound on the retain NLL (e.g. --method-args epsilon=0.5); "
                "there is no default because it depends on the model's retain loss before unlearning"
            )
        if settings.epsilon < 0 or settings.dual_step_size < 0 or settings.dual_warmup_epochs < 0:
            raise MethodOptionError("method 'pdu': epsilon, dual_step_size and dual_warmup_epochs must be >= 0")
        if settings.retain_loss == "none":
            raise MethodOptionError("method 'pdu' constrains the retain loss; retain_loss cannot be none")
        self.dual = float(settings.retain_weight)
        self.dual_history: list[float] = []
        self.retain_history: list[float] = []
        self._step_retain: list[torch.Tensor] = []
        self._warmup_steps = 0

    def uses_retain(self) -> bool:
        return True

    def forget_loss(self, model: Any, batch: Any, reference: Reference | None) -> torch.Tensor:
        return flatten_loss(answer_logits(model, batch), batch)

    def combine(self, forget: torch.Tensor, retain: torch.Tensor | None) -> torch.Tensor:
        assert retain is not None
        self._step_retain.append(retain.detach())
        return self.settings.forget_weight * forget + self.dual * (retain - self.settings.epsilon)

    def after_step(self, step: int, loss: float) -> None:
        retain = float(torch.stack(self._step_retain).mean())
        self._step_retain.clear()
        self.retain_history.append(retain)
        if step >= self._warmup_steps:
            self.dual = dual_update(self.dual, retain, self.settings.epsilon, self.settings.dual_step_size)
        self.dual_history.append(self.dual)

    def fit(self, model: Any, tokenizer: Any, data: UnlearningData) -> list[float]:
        options = self.settings
        self.dual = float(options.retain_weight)
        self.dual_history, self.retain_history = [], []
        self._warmup_steps = epochs_to_steps(options, options.dual_warmup_epochs, len(data.forget))
        losses = super().fit(model, tokenizer, data)
        self.info.update(
            dual_start=float(options.retain_weight), dual_last=self.dual, dual_warmup_steps=self._warmup_steps,
            retain_loss_last=self.retain_history[-1] if self.retain_history else None,
        )
        return losses
