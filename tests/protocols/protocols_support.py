"""Support for the protocol tests: a task that scores the support facts and forgets the first five."""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Any

from support import FACTS

import mu_eval
from mu_eval.task import TextExample, UnlearningData

FORGET_COUNT = 5
#: grad_ascent, cheap: two optimizer steps on the whole fold, no warm-up.
ASCENT = {"steps": "2", "lr": "1e-2", "batch_size": "8", "grad_accum_steps": "1", "warmup_ratio": "0"}


@dataclass
class ProtocolFactsOptions:
    forget_slice: str = mu_eval.option(f"0:{FORGET_COUNT}", help="a:b, the forget facts trained on")


class ProtocolFactsTask(mu_eval.Task):
    """Per-fact probability of the answer; forget = facts 0..4 (or `forget_slice=a:b` of them), retain = the rest."""

    name = "protocol_facts"
    Options = ProtocolFactsOptions

    def build_requests(self, ctx: mu_eval.TaskContext) -> list[mu_eval.Score]:
        return [mu_eval.Score(ctx.chat(q), a, append_eos=True) for q, a in FACTS]

    def process_results(self, results: list[Any], ctx: mu_eval.TaskContext) -> mu_eval.TaskResult:
        probabilities = [math.exp(-r.nll()) for r in results]
        forget, retain = probabilities[:FORGET_COUNT], probabilities[FORGET_COUNT:]
        return mu_eval.TaskResult(
            metrics={
                "forget_probability": mu_eval.MetricValue(sum(forget) / len(forget), len(forget), False),
                "retain_probability": mu_eval.MetricValue(sum(retain) / len(retain), len(retain), True),
                "first_fact": mu_eval.MetricValue(probabilities[0], 1, False),
                "last_forget_fact": mu_eval.MetricValue(probabilities[FORGET_COUNT - 1], 1, False),
            },
            items={"probability": probabilities},
            samples=[{"probability": value} for value in probabilities],
        )

    def unlearning_data(self, ctx: mu_eval.TaskContext) -> UnlearningData:
        begin, end = (int(x) for x in self.settings.forget_slice.split(":"))
        return UnlearningData(
            forget=[TextExample(ctx.chat(q), a) for q, a in FACTS[:FORGET_COUNT][begin:end]],
            retain=[TextExample(ctx.chat(q), a) for q, a in FACTS[FORGET_COUNT:]],
        )


def register_protocol_task() -> str:
    """Register the task as a plugin would, so the command line can name it."""
    from mu_eval.plugins import get_registry

    registry = get_registry()
    if ProtocolFactsTask.name not in registry.entries["tasks"]:
        module = types.ModuleType("protocols_test_plugin")
        module.register_tasks = mu_eval.hookimpl(lambda register: register(ProtocolFactsTask))
        registry.add_plugin(module, "protocols_test_plugin")
    return ProtocolFactsTask.name


def metric_values(tasks_section: dict) -> dict[str, float]:
    """{"task/metric": value} of a report's (or a step's) tasks section."""
    return {f"{task}/{name}": metric["value"] for task, section in tasks_section.items()
            for name, metric in section["metrics"].items()}
