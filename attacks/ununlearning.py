"""In-context ununlearning (`ununlearning`, Shumailov et al. 2024): knowledge given in the prompt comes back.

Per forget fact the question is asked under four conditions: no context, (a) `fact`: the fact itself,
(b) `related`: only the related facts it can be derived from (facts without related facts are left out
of this condition), (c) `control`: an unrelated fact (a retain fact, else another forget fact). Greedy
answers are judged by normalised answer match. Ununlearning rate = accuracy(with context) - accuracy(no
context) on the same facts; with `reference_model` (the original or the retrained oracle) the same
prompts run on it too and the gap model - reference is reported (a gap under context means collateral
damage to in-context use).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mu_eval.attack import AttackContext, AttackError, ConfiguredAttack
from mu_eval.attacks.common import answer_on, facts_by_task, free_memory, load_backend
from mu_eval.attacks.matching import contains_answer, rate
from mu_eval.options import option
from mu_eval.requests import Generate
from mu_eval.task_data import ForgetFact

CONDITIONS = ("none", "fact", "related", "control")
DEFAULT_TEMPLATE = "{context}\n\n{question}"


def control_context(index: int, facts: list[ForgetFact], retain: list[ForgetFact]) -> str | None:
    """An unrelated fact for item `index`: a retain fact if any, else another forget fact (None if neither)."""
    if retain:
        return retain[index % len(retain)].statement()
    if len(facts) > 1:
        return facts[(index + max(1, len(facts) // 2)) % len(facts)].statement()
    return None


def condition_messages(facts: list[ForgetFact], retain: list[ForgetFact], template: str) -> dict[str, list[str | None]]:
    """The user message of every fact under every condition (None where a condition does not apply)."""
    def with_context(context: str | None, fact: ForgetFact) -> str | None:
        return None if context is None else template.format(context=context, question=fact.question)

    return {
        "none": [fact.question for fact in facts],
        "fact": [with_context(fact.statement(), fact) for fact in facts],
        "related": [with_context(" ".join(fact.related) if fact.related else None, fact) for fact in facts],
        "control": [with_context(control_context(i, facts, retain), fact) for i, fact in enumerate(facts)],
    }


def condition_prompts(facts: list[ForgetFact], retain: list[ForgetFact], template: str,
                      chat: Callable[[str], str]) -> dict[str, list[str | None]]:
    messages = condition_messages(facts, retain, template)
    return {c: [None if m is None else chat(m) for m in items] for c, items in messages.items()}


def summarize(matches: dict[str, list[bool | None]]) -> dict[str, Any]:
    """Accuracy per condition and rate(condition) - rate(none) on the facts where the condition applies."""
    accuracy = {c: rate([m for m in matches[c] if m is not None]) for c in CONDITIONS}
    rates: dict[str, float | None] = {}
    for condition in CONDITIONS[1:]:
        pairs = [(m, base) for m, base in zip(matches[condition], matches["none"]) if m is not None]
        with_context = rate([m for m, _ in pairs])
        without = rate([bool(base) for _, base in pairs])
        rates[condition] = None if with_context is None or without is None else with_context - without
    return {"accuracy": accuracy, "ununlearning_rate": rates}


@dataclass
class UnunlearningAttackOptions:
    """The options of `UnunlearningAttack` (`--attack-args`)."""

    reference_model: str | None = option(None, help="model to compare under the same contexts (original or oracle)")
    max_new_tokens: int = option(32, minimum=1, help="tokens generated per answer")
    template: str = option(DEFAULT_TEMPLATE, help="user message with {context} and {question}")
    stop: list[str] | None = option(None, help="stop strings (default none)")
    keep_items: bool = option(True, help="keep per-item generations in the report")


class UnunlearningAttack(ConfiguredAttack):
    name = "ununlearning"
    description = "In-context ununlearning: forget questions with the fact, related facts or a control in context."
    Options = UnunlearningAttackOptions

    def run(self, ctx: AttackContext) -> dict[str, Any]:
        config = self.settings(ctx.options)
        template = config["template"]
        if "{context}" not in template or "{question}" not in template:
            raise AttackError("attack 'ununlearning': template must contain {context} and {question}")
        gathered, skipped = facts_by_task(ctx, "ununlearning")
        stop = tuple(config["stop"] or ())
        sections = {}
        for task_name, (facts, retain) in gathered.items():
            prompts = condition_prompts(facts, retain, template, ctx.contexts[task_name].chat)
            generations = self._generate(prompts, config["max_new_tokens"], stop, ctx.answer)
            sections[task_name] = self._section(facts, generations, config["keep_items"])
            sections[task_name]["n_related"] = sum(1 for f in facts if f.related)
        if config["reference_model"]:
            backend = load_backend(config["reference_model"], ctx, self.name, "reference")
            try:
                for task_name, (facts, retain) in gathered.items():
                    prompts = condition_prompts(facts, retain, template, backend.chat_formatter())
                    generations = self._generate(prompts, config["max_new_tokens"], stop,
                                                 lambda requests: answer_on(backend, requests))
                    reference = self._section(facts, generations, False)
                    section = sections[task_name]
                    section["reference"] = reference
                    section["gap_to_reference"] = {
                        c: None if section["accuracy"][c] is None or reference["accuracy"][c] is None
                        else section["accuracy"][c] - reference["accuracy"][c]
                        for c in CONDITIONS
                    }
            finally:
                backend.close()
                free_memory()
        return {"template": template, "conditions": list(CONDITIONS), "reference_model": config["reference_model"],
                "tasks": sections, "skipped": skipped}

    @staticmethod
    def _generate(prompts: dict[str, list[str | None]], max_new_tokens: int, stop: tuple[str, ...],
                  answer: Callable[[list[Any]], list[Any]]) -> dict[str, list[str | None]]:
        requests = [Generate(p, max_new_tokens, stop) for c in CONDITIONS for p in prompts[c] if p is not None]
        texts = iter(result.text for result in answer(requests))
        return {c: [None if p is None else next(texts) for p in prompts[c]] for c in CONDITIONS}

    @staticmethod
    def _section(facts: list[ForgetFact], generations: dict[str, list[str | None]], keep_items: bool) -> dict:
        matches = {
            c: [None if g is None else contains_answer(g, fact.answers()) for g, fact in zip(generations[c], facts)]
            for c in CONDITIONS
        }
        section: dict[str, Any] = {"n": len(facts), **summarize(matches)}
        if keep_items:
            section["items"] = [
                {"question": fact.question, "answer": fact.answer,
                 "generations": {c: generations[c][i] for c in CONDITIONS},
                 "match": {c: matches[c][i] for c in CONDITIONS}}
                for i, fact in enumerate(facts)
            ]
        return section
