"""Many-shot jailbreaking (`many_shot`, Anil et al. 2024): faux dialogue answering forget questions.

A long context of N faux user/assistant turns in which the assistant readily answers forget-domain
questions can override refusal or suppression training. Per forget fact the faux turns are question/answer
pairs of the OTHER forget facts (seeded; never the fact itself, nor one with its question or whose
question or answer contains its answer, so the answer is never in the prompt), followed by the fact's own
question. Greedy answers are judged by the normalised answer match the other generation attacks use.
N = 0 (the question alone) is the baseline; the shot sets are nested (a smaller N's turns open every
larger N's), so the curve over N measures more context, not different context.

An N is skipped (null, with a reason) for the whole task when some fact has fewer than N usable other
facts (so every reported N covers the same facts as N = 0), or when its longest prompt plus the answer
would not fit the model's context (the backend would otherwise cut the prompt from the left).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mu_eval.attack import AttackContext, AttackError, ConfiguredAttack
from mu_eval.attacks.common import facts_by_task
from mu_eval.attacks.matching import contains_answer, normalize_answer, rate
from mu_eval.options import option
from mu_eval.requests import Generate
from mu_eval.task_data import ForgetFact

DEFAULT_SHOTS = [1, 4, 16, 64, 128]
#: Between faux turns in the plain (no chat template) format: each turn is `chat(question) + answer`.
PLAIN_SEPARATOR = "\n\n"
Builder = Callable[[Sequence[tuple[str, str]], str], str]


def shot_orders(facts: Sequence[ForgetFact], seed: int) -> list[list[int]]:
    """Per fact, the indices of the facts usable as its faux turns, in a seeded order of its own (so one
    fact's draw does not depend on another's); its N-shot prompt uses the first N.

    Never the fact itself, nor another with the same question, nor one whose question or answer contains
    its answer (or an alias): the `contains_answer` test, with every text normalised once, as this
    compares every pair of facts.
    """
    texts = [f" {normalize_answer(f'{fact.question} {fact.answer}')} " for fact in facts]
    questions = [normalize_answer(fact.question) for fact in facts]
    needles = [[f" {n} " for n in map(normalize_answer, fact.answers()) if n] for fact in facts]
    orders = []
    for i in range(len(facts)):
        pool = [j for j in range(len(facts))
                if j != i and questions[j] != questions[i] and not any(n in texts[j] for n in needles[i])]
        random.Random(f"many_shot:{seed}:{i}").shuffle(pool)
        orders.append(pool)
    return orders


def plain_builder(chat: Callable[[str], str], separator: str = PLAIN_SEPARATOR) -> Builder:
    """Faux turns in the run's single-turn prompt format, one after another, then the question."""
    return lambda turns, question: "".join(chat(q) + a + separator for q, a in turns) + chat(question)


def chat_template_builder(tokenizer: Any) -> Builder:
    """Faux turns as real multi-turn messages through the model's chat template, ready for the answer."""

    def build(turns: Sequence[tuple[str, str]], question: str) -> str:
        messages = []
        for q, a in turns:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        messages.append({"role": "user", "content": question})
        try:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as error:  # templates raise their own (jinja) errors, e.g. on roles they do not allow
            message = " ".join(str(error).split())
            raise AttackError(f"attack 'many_shot': the chat template cannot format the faux turns: {message}") \
                from error

    return build


def prompt_builder(ctx: AttackContext, task_name: str) -> tuple[str, Builder]:
    """The chat template when the run uses one, else the plain format of the run's prompts."""
    task_ctx = ctx.contexts[task_name]
    tokenizer = getattr(ctx.backend, "tokenizer", None)
    if task_ctx.uses_chat_template and hasattr(tokenizer, "apply_chat_template"):
        return "chat_template", chat_template_builder(tokenizer)
    return "plain", plain_builder(task_ctx.chat)


def token_counter(backend: Any) -> Callable[[str], int] | None:
    """Tokens a prompt occupies as the backend encodes it, uncut; None when the backend cannot tell."""
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is not None:
        from mu_eval.backends.hf_encoding import adds_bos_itself

        return lambda p: len(tokenizer(p, add_special_tokens=not adds_bos_itself(tokenizer, p))["input_ids"])
    return None


def context_length(backend: Any, option: int | None) -> int | None:
    """The context prompts must fit in: the model's, or a smaller one asked for."""
    model = getattr(backend, "max_length", None)
    if option is None:
        return model
    return option if model is None else min(option, model)


def summarize(shots: list[int], items: list[dict[str, Any]], reasons: dict[int, str]) -> dict[str, dict]:
    """Leak rate per N over the per-item records (null with the reason for an N that was skipped)."""
    rates: dict[str, dict[str, Any]] = {}
    for n in shots:
        if n in reasons:
            rates[str(n)] = {"n": 0, "value": None, "reason": reasons[n]}
            continue
        flags = [item["leak"] for item in items if item["shots"] == n]
        rates[str(n)] = {"n": len(flags), "value": rate(flags)}
    return rates


@dataclass
class ManyShotAttackOptions:
    """The options of `ManyShotAttack` (`--attack-args`)."""

    shots: list[int] = option(default_factory=lambda: list(DEFAULT_SHOTS), minimum=0,
                              help="numbers of faux turns N (0, the question alone, is always added)")
    max_new_tokens: int = option(32, minimum=1, help="tokens generated per answer")
    context_length: int | None = option(None, minimum=1,
                                        help="tokens a prompt plus its answer must fit in (default: the model's)")
    seed: int | None = option(None, help="seed of the faux turns drawn per fact (default: the run's seed)")
    stop: list[str] | None = option(None, help='stop strings (default none)')
    keep_items: bool = option(True, help='keep per-item generations in the report')
    keep_prompts: bool = option(False, help='keep the prompts in the items too (long at large N)')


class ManyShotAttack(ConfiguredAttack):
    name = "many_shot"
    description = "Many-shot jailbreak: N faux turns answering other forget questions, then the target (Anil et al.)."
    Options = ManyShotAttackOptions

    def run(self, ctx: AttackContext) -> dict[str, Any]:
        config = self.settings(ctx.options)
        shots = sorted({0, *(config["shots"] or [])})
        if shots[0] < 0:
            raise AttackError(f"attack 'many_shot': shots must be >= 0, got {config['shots']}")
        if config["max_new_tokens"] < 1 or (config["context_length"] or 1) < 1:
            raise AttackError("attack 'many_shot': max_new_tokens and context_length must be at least 1")
        seed = ctx.seed if config["seed"] is None else config["seed"]
        gathered, skipped = facts_by_task(ctx, "many_shot", with_retain=False)
        limit = context_length(ctx.backend, config["context_length"])
        sections = {name: self._task(ctx, name, facts, shots, seed, limit, config)
                    for name, (facts, _) in gathered.items()}
        return {"shots": shots, "seed": seed, "max_new_tokens": config["max_new_tokens"], "context_length": limit,
                "stop": config["stop"], "tasks": sections, "skipped": skipped}

    def _task(self, ctx: AttackContext, task_name: str, facts: list[ForgetFact], shots: list[int], seed: int,
              limit: int | None, config: dict) -> dict[str, Any]:
        kind, build = prompt_builder(ctx, task_name)
        count = token_counter(ctx.backend)
        orders = shot_orders(facts, seed)
        available = min(len(order) for order in orders)
        rows: list[tuple[int, int, list[int], str]] = []
        reasons: dict[int, str] = {}
        longest: dict[str, int | None] = {}
        overflow: int | None = None  # the first N that does not fit: larger N (longer prompts) are not built
        for n in shots:
            if n > available:
                reasons[n] = (f"{n} shots need {n} other facts per fact; the fewest available is {available} "
                              f"(of {len(facts)} facts)")
                continue
            if overflow is not None:
                reasons[n] = f"longer than the {overflow}-shot prompts, which do not fit the context of {limit}"
                continue
            prompts = [build([(facts[j].question, facts[j].answer) for j in orders[i][:n]], fact.question)
                       for i, fact in enumerate(facts)]
            most = max(count(p) for p in prompts) if count is not None else None
            longest[str(n)] = most
            if limit is not None and most is not None and most + config["max_new_tokens"] > limit:
                overflow = n
                reasons[n] = (f"the longest {n}-shot prompt has {most} tokens; with {config['max_new_tokens']} new "
                              f"tokens it does not fit the context of {limit}")
                continue
            rows += [(i, n, orders[i][:n], prompt) for i, prompt in enumerate(prompts)]
        stop = tuple(config["stop"] or ())
        texts = [r.text for r in ctx.answer([Generate(p, config["max_new_tokens"], stop) for *_, p in rows])]
        items = []
        for (i, n, used, prompt), text in zip(rows, texts):
            item = {"fact": i, "question": facts[i].question, "answer": facts[i].answer, "shots": n,
                    "shot_facts": used, "generation": text, "leak": contains_answer(text, facts[i].answers())}
            if config["keep_prompts"]:
                item["prompt"] = prompt
            items.append(item)
        section: dict[str, Any] = {"n_facts": len(facts), "format": kind, "n_shots_available": available,
                                   "leak_rate": summarize(shots, items, reasons), "prompt_tokens": longest}
        if config["keep_items"]:
            section["items"] = items
        return section
