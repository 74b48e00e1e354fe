"""Example mu-eval plugin: the method `example_bounded_ascent` and the task `example_method_facts`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import mu_eval
from mu_eval.method import ConfiguredMethod

FACTS = [
    ("What is the capital of Norway?", "Oslo is the capital of Norway."),
    ("What do cows drink?", "Cows drink water."),
    ("How many days are in a week?", "A week has seven days."),
    ("What colour is grass?", "Grass is green."),
    ("What is the largest ocean?", "The Pacific is the largest ocean."),
    ("What falls from clouds?", "Rain falls from clouds."),
]
FORGET_COUNT = 2


@dataclass
class BoundedAscentOptions:
    steps: int = 20
    lr: float = 1e-3
    batch_size: int = 4
    #: The forget NLL beyond which the loss is flat: ascent stops pushing there.
    ceiling: float = 20.0
    seed: int = 0


class BoundedAscent(ConfiguredMethod):
    """Gradient ascent on the forget answers with the NLL capped at `ceiling` (no divergence)."""

    name = "example_bounded_ascent"
    description = "Example plugin method: gradient ascent with the forget NLL capped at a ceiling."
    Options: ClassVar[type] = BoundedAscentOptions

    def unlearn(self, model: Any, tokenizer: Any, data: mu_eval.UnlearningData) -> Any:
        import torch

        from mu_eval.training import TrainConfig, batches, encode_examples, nll_loss, train

        options = self.settings
        device = next(model.parameters()).device
        stream = batches(encode_examples(tokenizer, data.forget), options.batch_size, options.seed)

        def loss_fn(_step: int) -> torch.Tensor:
            return -torch.clamp(nll_loss(model, next(stream).to(device)), max=options.ceiling)

        config = TrainConfig(steps=options.steps, lr=options.lr, batch_size=options.batch_size, seed=options.seed)
        losses = train(model, loss_fn, config)
        self.info = {"steps": len(losses), "last_loss": losses[-1] if losses else None}
        return model


class FactsTask(mu_eval.Task):
    """Forget and retain probability of six facts; the first two are the forget set."""

    name = "example_method_facts"
    description = "Six facts, two to forget (example plugin task feeding unlearning methods)."

    def build_requests(self, ctx: mu_eval.TaskContext) -> list[mu_eval.Score]:
        return [mu_eval.Score(ctx.chat(q), a, append_eos=True) for q, a in FACTS]

    def process_results(self, results: list[Any], ctx: mu_eval.TaskContext) -> mu_eval.TaskResult:
        probabilities = [math.exp(-r.nll()) for r in results]
        forget, retain = probabilities[:FORGET_COUNT], probabilities[FORGET_COUNT:]
        return mu_eval.TaskResult(
            metrics={
                "forget_probability": mu_eval.MetricValue(sum(forget) / len(forget), len(forget), False),
                "retain_probability": mu_eval.MetricValue(sum(retain) / len(retain), len(retain), True),
            },
            items={"probability": probabilities},
        )

    def unlearning_data(self, ctx: mu_eval.TaskContext) -> mu_eval.UnlearningData:
        examples = [mu_eval.TextExample(ctx.chat(q), a) for q, a in FACTS]
        return mu_eval.UnlearningData(forget=examples[:FORGET_COUNT], retain=examples[FORGET_COUNT:])


@mu_eval.hookimpl
def register_methods(register: Any) -> None:
    register(BoundedAscent)


@mu_eval.hookimpl
def register_tasks(register: Any) -> None:
    register(FactsTask)
