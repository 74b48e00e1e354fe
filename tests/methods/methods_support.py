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
from mu_eval.backends.base import PLAIN_PROMPT
from mu_eval.task import TextExample, UnlearningData
from mu_eval.training import TrainConfig, collate, encode_examples, fine_tune, token_logprobs

FORGET_FACTS = FACTS[:3]
RETAIN_FACTS = FACTS[3:]


def examples(facts: Sequence[tuple[str, str]]) -> list[TextExample]:
    return [TextExample(PLAIN_PROMPT.format(question=q), a) for q, a in facts]


FORGET = examples(FORGET_FACTS)
RETAIN = examples(RETAIN_FACTS)


def split() -> UnlearningData:
    return UnlearningData(forget=list(FORGET), retain=list(RETAIN))


@torch.no_grad()
def probability(model: Any, tokenizer: Any, items: Sequence[TextExample]) -> float:
    """Mean over items of exp(-NLL per answer token, EOS included): TOFU's length-normalised probability."""
    was_training = model.training
    model.eval()
    logp, mask = token_logprobs(model, collate(encode_examples(tokenizer, items)))
    model.train(was_training)
    per_item = (logp.sum(-1) / mask.sum(-1)).exp()
    return float(per_item.mean())


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
