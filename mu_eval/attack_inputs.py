"""What attacks draw from tasks: membership sets, facts and forget metrics, from the task's own hooks
(`Task.membership_requests`, `forget_facts`, `retain_facts`, `forget_metrics`) or derived from
`Task.unlearning_data` when the task has none.

Derived defaults: members and non-members are the forget and holdout examples, scored as
`Score(example.prompt, example.answer, append_eos=True)` (documents, i.e. examples with an empty prompt,
without EOS); facts are one per forget (retain) question, the question recovered from the chat-formatted
prompt and the whole answer as the gold string (documents are skipped); forget metrics are every metric of
the task when it declares none.

`--limit N` (`TaskContext.limit`) applies here, to whatever the task or the default returns: every list an
attack draws through these helpers is cut to its first N items, in the task's order, as the task's own
sets are. Attacks that take their data through this module, third-party ones included, need not handle
the limit themselves.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mu_eval.requests import Score
from mu_eval.task import Task, TaskContext, TaskResult, cut_to_limit
from mu_eval.task_data import ForgetFact, MembershipSet, TextExample, UnlearningData

MARKER = "\x00MU-EVAL-QUESTION\x00"
T = TypeVar("T")


@dataclass
class Support:
    """What a task offered, with the reason when it offered nothing (goes into the report)."""

    value: Any = None
    reason: str | None = None
    derived: bool = False
    notes: list[str] = field(default_factory=list)


def limited(items: Sequence[T], ctx: TaskContext) -> list[T]:
    """The first `ctx.limit` items (all without a limit), so a `--limit` run cuts attacks' inputs too."""
    return cut_to_limit(items, getattr(ctx, "limit", None))


def _full_unlearning_data(task: Task, ctx: TaskContext) -> UnlearningData | None:
    try:
        return task.unlearning_data(ctx)
    except NotImplementedError:
        return None


def unlearning_data(task: Task, ctx: TaskContext) -> UnlearningData | None:
    """The task's forget, retain and holdout examples, each cut to `ctx.limit` (methods train on all of them,
    through `Task.unlearning_data`; attacks see what the run's limit leaves)."""
    data = _full_unlearning_data(task, ctx)
    if data is None or getattr(ctx, "limit", None) is None:
        return data
    parts = {name: limited(getattr(data, name), ctx) for name in ("forget", "retain", "holdout") if hasattr(data, name)}
    if dataclasses.is_dataclass(data):
        return dataclasses.replace(data, **parts)
    data = copy.copy(data)
    for name, value in parts.items():
        setattr(data, name, value)
    return data


def _limited_membership(membership: MembershipSet | None, ctx: TaskContext) -> MembershipSet | None:
    """Members and non-members (and their Zlib texts, kept aligned) cut to `ctx.limit` each."""
    if membership is None or getattr(ctx, "limit", None) is None:
        return membership

    def cut(texts: list[str] | None) -> list[str] | None:
        return None if texts is None else limited(texts, ctx)

    return dataclasses.replace(
        membership,
        members=limited(membership.members, ctx),
        nonmembers=limited(membership.nonmembers, ctx),
        member_texts=cut(membership.member_texts),
        nonmember_texts=cut(membership.nonmember_texts),
    )


def membership_set(task: Task, ctx: TaskContext) -> Support:
    try:
        return Support(_limited_membership(task.membership_requests(ctx), ctx))
    except NotImplementedError:
        pass
    data = unlearning_data(task, ctx)
    if data is None:
        return Support(reason=f"task {task.name!r} has neither membership_requests nor unlearning_data")
    if not data.forget or not data.holdout:
        return Support(reason=f"task {task.name!r} has no forget or no holdout examples (membership needs both)")
    members = [example_score(e) for e in data.forget]
    nonmembers = [example_score(e) for e in data.holdout]
    return Support(MembershipSet(members, nonmembers, description="forget vs holdout examples"), derived=True)


def example_score(example: TextExample) -> Score:
    """A QA answer is scored with an appended EOS (as tasks and training do; MIA scores leave it out by
    default); a document (empty prompt) is scored as it is, every token after BOS, as MUSE does."""
    return Score(example.prompt, example.answer, append_eos=bool(example.prompt))


def unformat_prompt(prompt: str, chat: Callable[[str], str]) -> str | None:
    """The question inside a prompt made by `chat(question)`, or None when `prompt` is not of that form."""
    template = chat(MARKER)
    if MARKER not in template:
        return None
    prefix, suffix = template.split(MARKER, 1)
    if prompt.startswith(prefix) and prompt.endswith(suffix) and len(prompt) >= len(prefix) + len(suffix):
        return prompt[len(prefix) : len(prompt) - len(suffix)]
    return None


def facts_from_examples(examples: list[TextExample], chat: Callable[[str], str]) -> list[ForgetFact]:
    facts = []
    for example in examples:
        question = unformat_prompt(example.prompt, chat)
        question = (question if question is not None else example.prompt).strip()
        facts.append(ForgetFact(question=question, answer=example.answer.strip()))
    return facts


def _facts(task: Task, ctx: TaskContext, method: str, split: str) -> Support:
    """The task's facts, or one per question of its examples; cut to `ctx.limit` after documents are
    skipped, so a limit of N gives N facts whenever the task has that many."""
    hook = task.forget_facts if method == "forget_facts" else task.retain_facts
    try:
        return Support(limited(hook(ctx), ctx))
    except NotImplementedError:
        pass
    data = _full_unlearning_data(task, ctx)
    if data is None:
        return Support(reason=f"task {task.name!r} has neither {method} nor unlearning_data")
    examples = getattr(data, split)
    if not examples:
        return Support(reason=f"task {task.name!r} has no {split} examples")
    questions = [e for e in examples if e.prompt.strip()]
    if not questions:
        return Support(reason=f"task {task.name!r} has {split} documents, not questions: implement {method}(ctx)")
    return Support(facts_from_examples(limited(questions, ctx), ctx.chat), derived=True)


def forget_facts(task: Task, ctx: TaskContext) -> Support:
    return _facts(task, ctx, "forget_facts", "forget")


def retain_facts(task: Task, ctx: TaskContext) -> Support:
    return _facts(task, ctx, "retain_facts", "retain")


def forget_metric_names(task: Task, result: TaskResult) -> tuple[list[str], bool]:
    """The task's declared forget metrics present in `result`, or all its metrics (declared=False)."""
    declared = [name for name in task.forget_metrics if name in result.metrics]
    if declared:
        return declared, True
    return list(result.metrics), False


def metric_values(result: TaskResult, names: list[str]) -> dict[str, float | None]:
    return {name: result.metrics[name].value if name in result.metrics else None for name in names}
