"""Example mu-eval plugin: the task `example_capitals` and the metric `example_mean_probability`."""

from __future__ import annotations

import math

import mu_eval
from mu_eval.plugins import get_registry

CAPITALS = [
    ("France", "Paris"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Germany", "Berlin"),
    ("Portugal", "Lisbon"),
]


def mean_probability(nlls: list[float]) -> float:
    """Mean over items of exp(-NLL): the length-normalised probability of each answer."""
    return sum(math.exp(-x) for x in nlls) / len(nlls)


class CapitalsTask(mu_eval.Task):
    """Scores 'The capital of X is' followed by the capital."""

    name = "example_capitals"
    description = "Scores the capitals of five countries (example plugin)."

    def build_requests(self, ctx):
        rows = ctx.limited(CAPITALS)
        return [mu_eval.Score(f"The capital of {country} is", f" {city}.") for country, city in rows]

    def process_results(self, results, ctx):
        metric = get_registry().metric("example_mean_probability")
        nlls = [r.nll() for r in results]
        value = metric.obj(nlls)
        return mu_eval.TaskResult(
            metrics={"mean_probability": mu_eval.MetricValue(value, len(nlls), metric.extra["higher_is_better"])},
            items={"nll": nlls},
        )


@mu_eval.hookimpl
def register_tasks(register):
    register(CapitalsTask)


@mu_eval.hookimpl
def register_metrics(register):
    register(mean_probability, name="example_mean_probability", higher_is_better=True)
