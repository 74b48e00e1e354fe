"""IdkDPO: prefer a refusal to the true answer of a forget question, relative to the original model."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from mu_eval.task import TextExample
from mu_eval.training import Batch, Reference, answer_logits, collate, encode_examples, logprobs_from_logits
from mu_eval.unlearning import MethodError

from .base import LLMMethod, TrainOptions
from .refusals import load_refusals


@dataclass
class PairBatch:
    """The preferred answers (refusals) and the rejected ones (true answers) of the same forget prompts."""

    win: Batch
    lose: Batch

    def to(self, device: Any) -> PairBatch:
        return PairBatch(self.win.to(device), self.lose.to(device))


@dataclass
class IdkDPOOptions(TrainOptions):
    beta: float = 0.1
    #: A file of refusals (one per line, text or JSON); empty: mu-eval's built-in list.
    refusals: str = ""


def sequence_logp(model_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    logp, _ = logprobs_from_logits(model_logits, batch)
    return logp.sum(-1)


class IdkDPO(LLMMethod):
    """-(2/beta) E log sigmoid(beta [Delta(refusal) - Delta(answer)]), Delta = log pi_theta - log pi_ref."""

    name = "idk_dpo"
    description = "IdkDPO: DPO preferring an 'I don't know' refusal over the forget answer (+ retain NLL)."
    Options: ClassVar[type] = IdkDPOOptions
    needs_reference: ClassVar[bool] = True

    def forget_items(self, tokenizer: Any, forget: list[TextExample]) -> list[Any]:
        try:
            refusals = load_refusals(self.settings.refusals or None)
        except (OSError, ValueError) as error:
            raise MethodError(f"method {self.name!r}: {error}") from error
        chooser = random.Random(self.settings.seed)
        wins = [TextExample(e.prompt, chooser.choice(refusals)) for e in forget]
        max_length = self.settings.max_length
        losers = encode_examples(tokenizer, forget, max_length)
        return list(zip(encode_examples(tokenizer, wins, max_length), losers))

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
