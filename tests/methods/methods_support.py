"""Support for the method tests: a tiny model that has learned the support facts, a forget/retain split of
those facts, a task that hands the split to methods, and forget/retain probabilities measured directly."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from support import FACTS

import mu_eval
from mu_eval.backend import PLAIN_PROMPT
from mu_eval.backends.hf_encoding import encode_score
from mu_eval.task import TextExample, UnlearningData
from mu_eval.training import TrainConfig, collate, encode_examples, fine_tune, token_logprobs

FORGET_FACTS = FACTS[:3]
RETAIN_FACTS = FACTS[3:]


def examples(facts: Sequence[tuple[str, str]]) -> list[TextExample]:
    return [TextExample(PLAIN_PROMPT.format(question=q), a) for q, a in facts]


FORGET = examples(FORGET_FACTS)
RETAIN = examples(RETAIN_FACTS)
#: Wrong answers to the forget questions, in the manner of TOFU's perturbed answers (for DPO).
ALTERNATES = (
    ("Lyon is the capital of France.", "Marseille is the capital of France."),
    ("Charles Dickens wrote Hamlet.", "Jane Austen wrote Hamlet."),
    ("The sky is green on a clear day.", "The sky is grey on a clear day."),
)


def split(alternates: bool = False) -> UnlearningData:
    """The forget/retain split; with `alternates`, each forget example carries its wrong answers."""
    forget = [TextExample(e.prompt, e.answer, wrong) for e, wrong in zip(FORGET, ALTERNATES)] if alternates else FORGET
    return UnlearningData(forget=list(forget), retain=list(RETAIN))


@torch.no_grad()
def probability(model: Any, tokenizer: Any, items: Sequence[TextExample]) -> float:
    """Mean over items of exp(-NLL per answer token, EOS included): TOFU's length-normalised probability."""
    was_training = model.training
    model.eval()
    logp, mask = token_logprobs(model, collate(encode_examples(tokenizer, items)))
    model.train(was_training)
    per_item = (logp.sum(-1) / mask.sum(-1)).exp()
    return float(per_item.mean())


@torch.no_grad()
def answer_tokens(model: Any, tokenizer: Any, items: Sequence[TextExample]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per example, scored alone (no padding): the logits predicting each answer token [n, V] and the tokens [n]."""
    was_training = model.training
    model.eval()
    out = []
    for example in items:
        encoded = encode_score(tokenizer, example.prompt, example.answer, True, None)
        ids = torch.tensor([encoded.input_ids])
        out.append((model(input_ids=ids).logits[0, encoded.start - 1 : -1].float(), ids[0, encoded.start :]))
    model.train(was_training)
    return out


def forget_retain(model: Any, tokenizer: Any) -> tuple[float, float]:
    return probability(model, tokenizer, FORGET), probability(model, tokenizer, RETAIN)


def train_on_facts(checkpoint: Path, directory: Path, steps: int = 150) -> Path:
    """Teach the random tiny model every support fact (forget and retain alike), and save it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    config = TrainConfig(steps=steps, lr=3e-3, batch_size=len(FACTS), progress=False, seed=0)
    fine_tune(model, tokenizer, FORGET + RETAIN, config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


class FactsUnlearningTask(mu_eval.Task):
    """Scores every fact and reports forget and retain probability; forgets the first three facts."""

    name = "methods_facts"

    def build_requests(self, ctx: mu_eval.TaskContext) -> list[mu_eval.Score]:
        return [mu_eval.Score(ctx.chat(q), a, append_eos=True) for q, a in FORGET_FACTS + RETAIN_FACTS]

    def process_results(self, results: list[Any], ctx: mu_eval.TaskContext) -> mu_eval.TaskResult:
        probabilities = [math.exp(-r.nll()) for r in results]
        forget, retain = probabilities[: len(FORGET_FACTS)], probabilities[len(FORGET_FACTS) :]
        return mu_eval.TaskResult(
            metrics={
                "forget_probability": mu_eval.MetricValue(sum(forget) / len(forget), len(forget), False),
                "retain_probability": mu_eval.MetricValue(sum(retain) / len(retain), len(retain), True),
            },
            items={"probability": probabilities},
        )

    def unlearning_data(self, ctx: mu_eval.TaskContext) -> UnlearningData:
        return UnlearningData(
            forget=[TextExample(ctx.chat(q), a) for q, a in FORGET_FACTS],
            retain=[TextExample(ctx.chat(q), a) for q, a in RETAIN_FACTS],
        )
