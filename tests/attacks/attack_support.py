"""A small question-answering task with forget, retain and holdout facts, and the tiny models it runs on.

Members (FACTS[0::2]) are fine-tuned into the tiny model; holdout facts (FACTS[1::2]) never are. The task
scores the forget and retain answers and implements `unlearning_data`, so every default of `mu_eval.attack_inputs`
(membership from forget vs holdout, facts from the prompts) is exercised through it.
"""

from __future__ import annotations

import math
from pathlib import Path

from support import FACTS

import mu_eval
from mu_eval.backend import PLAIN_PROMPT
from mu_eval.task import TextExample, UnlearningData
from mu_eval.training import TrainConfig, fine_tune

MEMBERS = FACTS[0::2]
HOLDOUT = FACTS[1::2]


def plain_prompt(question: str) -> str:
    """The prompt the harness builds for a model without a chat template."""
    return PLAIN_PROMPT.format(question=question)


def examples(facts) -> list[TextExample]:
    return [TextExample(plain_prompt(q), a) for q, a in facts]


class AttackQATask(mu_eval.Task):
    """Forget probability and retain probability; forget/retain/holdout examples for the attacks."""

    name = "attack_test_qa"
    forget_metrics = ("forget_probability",)

    def __init__(self, forget=None, retain=None, holdout=None, **options):
        super().__init__(**options)
        self.forget = list(MEMBERS[:3] if forget is None else forget)
        self.retain = list(MEMBERS[3:] if retain is None else retain)
        self.holdout = list(HOLDOUT if holdout is None else holdout)

    def build_requests(self, ctx):
        rows = self.forget + self.retain
        return [mu_eval.Score(ctx.chat(q), a, append_eos=True) for q, a in rows]

    def process_results(self, results, ctx):
        probabilities = [math.exp(-r.nll()) for r in results]
        forget, retain = probabilities[: len(self.forget)], probabilities[len(self.forget) :]
        metrics = {"forget_probability": mu_eval.MetricValue(sum(forget) / len(forget), len(forget), False)}
        if retain:
            metrics["retain_probability"] = mu_eval.MetricValue(sum(retain) / len(retain), len(retain), True)
        return mu_eval.TaskResult(metrics=metrics, items={"probability": probabilities})

    def unlearning_data(self, ctx):
        def make(facts):
            return [TextExample(ctx.chat(q), a) for q, a in facts]

        return UnlearningData(forget=make(self.forget), retain=make(self.retain), holdout=make(self.holdout))


class NoDataTask(mu_eval.Task):
    """A task with a metric but no unlearning data: attacks must say what is missing."""

    name = "attack_test_nodata"

    def build_requests(self, ctx):
        return [mu_eval.Score(ctx.chat("What is frozen water called?"), "Frozen water is called ice.")]

    def process_results(self, results, ctx):
        return mu_eval.TaskResult(metrics={"nll": mu_eval.MetricValue(results[0].nll(), 1, False)})


@mu_eval.hookimpl
def register_tasks(register):
    register(AttackQATask)
    register(NoDataTask)


def load(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def train_on(model, tokenizer, train_examples, steps: int, lr: float = 3e-3, batch_size: int = 8, seed: int = 0):
    """Fine-tune in place with the shared loop; returns the losses."""
    config = TrainConfig(steps=steps, lr=lr, batch_size=batch_size, seed=seed, progress=False)
    return fine_tune(model, tokenizer, train_examples, config)


# -- a "probe" model that behaves like an unlearned model which still uses knowledge given in context ------
def probe_facts():
    from mu_eval.task_data import ForgetFact

    forget = [
        ForgetFact("What is the capital of France?", "Paris", "Paris is the capital of France.",
                   related=("The Eiffel Tower stands in Paris.", "The Eiffel Tower stands in the capital of France.")),
        ForgetFact("Who wrote Hamlet?", "Shakespeare", "Hamlet was written by William Shakespeare.",
                   related=("Macbeth was written by William Shakespeare.", "Hamlet and Macbeth have one author.")),
    ]
    retain = [
        ForgetFact("Which planet is known as the red planet?", "Mars", "Mars is known as the red planet."),
        ForgetFact("What do bees make?", "honey", "Bees make honey from the nectar of flowers."),
    ]
    return forget, retain


REFUSAL = "I do not know."


class ProbeTask(AttackQATask):
    """Forget and retain facts given explicitly (with related facts) for the generation attacks."""

    name = "attack_test_probe"

    def forget_facts(self, ctx):
        return probe_facts()[0]

    def retain_facts(self, ctx):
        return probe_facts()[1]


def probe_training_examples() -> list[TextExample]:
    """What the probe model learns: refuse without context, answer with the fact in context, answer the
    related-facts context for the first fact only, leak under direct prompts for both forget facts and
    under implied prompts for the first only, and answer direct prompts for the first retain fact only."""
    from mu_eval.attacks.reasoning import build_messages
    from mu_eval.attacks.ununlearning import DEFAULT_TEMPLATE, condition_messages

    forget, retain = probe_facts()
    wanted: dict[str, str] = {}
    conditions = condition_messages(forget, retain, DEFAULT_TEMPLATE)
    for index, fact in enumerate(forget):
        wanted[conditions["none"][index]] = REFUSAL
        wanted[conditions["fact"][index]] = fact.statement()
        wanted[conditions["related"][index]] = fact.statement() if index == 0 else REFUSAL
        wanted[conditions["control"][index]] = REFUSAL
        messages = build_messages(fact, 3)
        for message in messages["direct"]:
            wanted[message] = fact.statement()
        for message in messages["indirect"]:
            wanted[message] = REFUSAL
        for message in messages["implied"]:
            wanted[message] = fact.statement() if index == 0 else REFUSAL
    for index, fact in enumerate(retain):
        for kind, items in build_messages(fact, 3).items():
            for message in items:
                wanted[message] = fact.statement() if kind == "direct" and index == 0 else REFUSAL
    # The prompt ends with a space that byte-level BPE keeps as a lone token when the prompt is encoded alone
    # for generation; a leading space on the answer makes training see that same token.
    return [TextExample(plain_prompt(message), " " + answer) for message, answer in wanted.items()]
