"""Rejection tuning (RT): supervised fine-tuning on (forget question, refusal) pairs, so the model learns to
decline the forget questions instead of answering them. The refusals are IdkDPO's (mu-eval's own list or a
`refusals` file), one drawn (seeded) per question, or with `refusals=task` the answers the task supplies
(RWKU's refusal corpus pairs each question with its refusal already).

Defaults are RWKU's RT recipe: lr 4e-7, 3 epochs, batch 8 without accumulation, no retain term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mu_eval.method import MethodError
from mu_eval.task import TextExample
from mu_eval.training import encode_examples, nll_loss
from mu_eval.training_models import Reference

from .base import LLMMethod, TrainOptions
from .refusals import refusal_examples

#: `refusals` value that trains on the task's own (question, refusal) pairs.
TASK_REFUSALS = "task"


@dataclass
class RTOptions(TrainOptions):
    lr: float = 4e-7
    epochs: float = 3.0
    grad_accum_steps: int = 1
    retain_loss: str = "none"
    #: A file of refusals (one per line, text or JSON); empty: mu-eval's built-in list; "task": the forget
    #: examples' own answers, which must then be refusals (e.g. RWKU's `train_corpus=refusal`).
    refusals: str = ""


class RejectionTuning(LLMMethod):
    """NLL of a refusal given each forget question, minimised."""

    name = "rt"
    description = "RT: rejection tuning, fine-tune on (forget question, refusal) pairs (RWKU recipe)."
    Options: ClassVar[type] = RTOptions
    accepts_images: ClassVar[bool] = False
    image_refusal: ClassVar[str] = ("it pairs each forget prompt with a refusal as a new text example and does not "
                                    "carry the example's images")

    def forget_items(self, tokenizer: Any, forget: list[TextExample]) -> list[Any]:
        if self.settings.refusals == TASK_REFUSALS:
            return encode_examples(tokenizer, forget, self.settings.max_length)
        try:
            pairs = refusal_examples(forget, self.settings.refusals or None, self.settings.seed)
        except (OSError, ValueError) as error:
            raise MethodError(f"method {self.name!r}: {error}") from error
        return encode_examples(tokenizer, pairs, self.settings.max_length)

    def forget_loss(self, model: Any, batch: Any, reference: Reference | None) -> torch.Tensor:
        return nll_loss(model, batch)
