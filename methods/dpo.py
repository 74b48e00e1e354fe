"""DPO on forget questions, relative to the original model: prefer a refusal (IdkDPO) or an alternate answer
the task supplies (DPO) to the true answer."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from mu_eval.method import MethodError
from mu_eval.task import TextExample
from mu_eval.training import Batch, answer_logits, collate, encode_examples, logprobs_from_logits
from mu_eval.training_models import Reference

from .base import LLMMethod, TrainOptions
from .refusals import refusal_examples


@dataclass
class PairBatch:
    """The preferred answers and the rejected ones (true answers) of the same forget prompts."""

    win: Batch
    lose: Batch

    def to(self, device: Any) -> PairBatch:
        return PairBatch(self.win.to(device), self.lose.to(device))


@dataclass
class DPOOptions(TrainOptions):
    beta: float = 0.1


@dataclass
class IdkDPOOptions(DPOOptions):
    #: A file of refusals (one per line, text or JSON); empty: mu-eval's built-in list.
    refusals: str = ""


def sequence_logp(model_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    logp, _ = logprobs_from_logits(model_logits, batch)
    return logp.sum(-1)


class _Preference(LLMMethod):
    """-(2/beta) E log sigmoid(beta [Delta(y_w) - Delta(y_l)]), Delta = log pi_theta - log pi_ref, y_l the
    true answer; subclasses choose y_w."""

    needs_reference: ClassVar[bool] = True
    accepts_images: ClassVar[bool] = False
    image_refusal: ClassVar[str] = ("it pairs each forget prompt with a new text answer (a refusal or an alternate) "
                                    "and does not carry the example's images")

    def preferred(self, forget: list[TextExample]) -> list[TextExample]:
        raise NotImplementedError

    def forget_items(self, tokenizer: Any, forget: list[TextExample]) -> list[Any]:
        max_length = self.settings.max_length
        wins = encode_examples(tokenizer, self.preferred(forget), max_length)
        return list(zip(wins, encode_examples(tokenizer, forget, max_length)))

    def collate_forget(self, items: Sequence[Any]) -> PairBatch:
        return PairBatch(collate([win for win, _ in items]), collate([lose for _, lose in items]))

    def forget_loss(self, model: Any, batch: PairBatch, reference: Reference | None) -> torch.Tensor:
        assert reference is not None
        beta = self.settings.beta
        win = sequence_logp(answer_logits(model, batch.win), batch.win)
        lose = sequence_logp(answer_logits(model, batch.lose), batch.lose)
        ref_win = sequence_logp(reference.logits(batch.win), batch.win)
        ref_lose = sequence_logp(reference.logits(batch.lose), batch.lose)
        margin = (win - ref_win) - (lose - ref_lose)
        return -(2.0 / beta) * F.logsigmoid(beta * margin).mean()


class IdkDPO(_Preference):
    """DPO with y_w an "I don't know" refusal drawn (seeded) for each forget question."""

    name = "idk_dpo"
    description = "IdkDPO: DPO preferring an 'I don't know' refusal over the forget answer (+ retain NLL)."
    Options: ClassVar[type] = IdkDPOOptions

    def preferred(self, forget: list[TextExample]) -> list[TextExample]:
        try:
            return refusal_examples(forget, self.settings.refusals or None, self.settings.seed)
        except (OSError, ValueError) as error:
            raise MethodError(f"method {self.name!r}: {error}") from error


class AlternateDPO(_Preference):
    """DPO with y_w one of the example's `alternates` (e.g. a perturbed answer), drawn (seeded) per example."""

    name = "dpo"
    description = "DPO: prefer an alternate answer the task supplies over the forget answer (+ retain NLL)."
    Options: ClassVar[type] = DPOOptions

    def preferred(self, forget: list[TextExample]) -> list[TextExample]:
        missing = [e for e in forget if not getattr(e, "alternates", ())]
        if missing:
            raise MethodError(
                f"method 'dpo' prefers an alternate answer to the true one, but {len(missing)} of {len(forget)} "
                "forget examples carry no alternates (TextExample.alternates; the TOFU and synthetic tasks fill "
                "them with perturbed answers). Use idk_dpo (a refusal as the preferred answer), or pass "
                "TextExample(prompt, answer, alternates=(...)) to mu_eval.unlearn"
            )
        chooser = random.Random(self.settings.seed)
        return [TextExample(e.prompt, chooser.choice(list(e.alternates))) for e in forget]
