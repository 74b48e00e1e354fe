"""Negative preference optimisation: NPO (against a frozen reference) and SimNPO (no reference).

log pi(y|x) is summed over answer tokens (spec notation), per sequence: MUSE's NPO subtracts logits element
by element instead, which is not the published loss and is not copied here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from mu_eval.training import answer_logits, logprobs_from_logits
from mu_eval.training_models import Reference

from .base import LLMMethod, TrainOptions


def npo_loss(model: Any, batch: Any, reference: Reference, beta: float) -> torch.Tensor:
    """-(2/beta) E log sigmoid(-beta [log pi_theta(y|x) - log pi_ref(y|x)]), log pi summed per sequence."""
    logp, _ = logprobs_from_logits(answer_logits(model, batch), batch)
    ref_logp, _ = logprobs_from_logits(reference.logits(batch), batch)
    ratio = logp.sum(-1) - ref_logp.sum(-1)
    return -(2.0 / beta) * F.logsigmoid(-beta * ratio).mean()


@dataclass
class NPOOptions(TrainOptions):
    beta: float = 0.1


class NPO(LLMMethod):
    """-(2/beta) E log sigmoid(-beta [log pi_theta(y|x) - log pi_ref(y|x)]) on forget, NLL on retain."""

    name = "npo"
    description = "NPO: negative preference optimisation against the model before unlearning (+ retain NLL)."
    Options: ClassVar[type] = NPOOptions
    needs_reference: ClassVar[bool] = True

    def forget_loss(self, model: Any, batch: Any, reference: Reference | None) -> torch.Tensor:
        assert reference is not None
        return npo_loss(model, batch, reference, self.settings.beta)


@dataclass
class SimNPOOptions(TrainOptions):
    beta: float = 4.5
    margin: float = 0.0
    forget_weight: float = 0.125


class SimNPO(LLMMethod):
    """-(2/beta) E log sigmoid(-(beta/|y|) log pi_theta(y|x) - margin): NPO without a reference model."""

    name = "simnpo"
    description = "SimNPO: length-normalised NPO without a reference model (+ retain NLL)."
    Options: ClassVar[type] = SimNPOOptions

    def forget_loss(self, model: Any, batch: Any, reference: Reference | None) -> torch.Tensor:
        beta, margin = self.settings.beta, self.settings.margin
        logp, mask = logprobs_from_logits(answer_logits(model, batch), batch)
        length = mask.sum(-1).clamp(min=1)
        return -(2.0 / beta) * F.logsigmoid(-(beta / length) * logp.sum(-1) - margin).mean()
