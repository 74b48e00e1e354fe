"""`--limit N` cuts what attacks draw from tasks to the first N items of each set, and the report says so.

The limit is applied where attacks take their data (`mu_eval.attack_inputs`), so the built-in attacks
and a third-party attack that only uses those helpers get it alike. Tasks here have more forget, retain
and holdout facts than the limit, each set of a different size, so a count that ignored the limit shows.
"""

from __future__ import annotations

import types

import pytest
from attack_support import AttackQATask, plain_prompt
from support import FACTS

import mu_eval
from mu_eval import attack_inputs
from mu_eval.attack import Attack, AttackContext
from mu_eval.backend import PLAIN_PROMPT
from mu_eval.cli import main
from mu_eval.report.schema import validate_report
from mu_eval.task import TaskContext, TextExample, UnlearningData

FORGET, RETAIN, HOLDOUT = FACTS[:4], FACTS[4:7], FACTS[7:]
LIMIT = 2


def limit_task() -> AttackQATask:
    return AttackQATask(forget=FORGET, retain=RETAIN, holdout=HOLDOUT)


def context(limit: int | None) -> TaskContext:
    return TaskContext(load=lambda spec: [], chat=lambda q: PLAIN_PROMPT.format(question=q), uses_chat_template=False,
                       limit=limit)


class DrawingAttack(Attack):
    """A third-party attack that knows nothing of `--limit`: it reports what the attack inputs gave it and how
    many answers its requests got from the run's engine."""

    name = "limit_test_draws"

    def run(self, ctx: AttackContext) -> dict:
        tasks = {}
        for task_name, task in ctx.tasks.items():
            task_ctx = ctx.contexts[task_name]
            membership = attack_inputs.membership_set(task, task_ctx).value
            data = attack_inputs.unlearning_data(task, task_ctx)
            answers = ctx.answer(membership.members + membership.nonmembers)
            tasks[task_name] = {
                "forget_questions": [f.question for f in attack_inputs.forget_facts(task, task_ctx).value],
                "retain_questions": [f.question for f in attack_inputs.retain_facts(task, task_ctx).value],
                "members": [r.context for r in membership.members],
                "nonmembers": [r.context for r in membership.nonmembers],
                "answers": len(answers),
                "unlearning": {part: len(getattr(data, part)) for part in ("forget", "retain", "holdout")},
            }
        return {"tasks": tasks}


@pytest.fixture(scope="module")
def drawing_attack() -> str:
    from mu_eval.plugins import get_registry

    registry = get_registry()
    if DrawingAttack.name not in registry.names("attacks"):
        module = types.ModuleType("limit_test_attack_plugin")
        module.register_attacks = mu_eval.hookimpl(lambda register: register(DrawingAttack))
        registry.add_plugin(module, "limit_test_attack_plugin")
    return DrawingAttack.name


def questions(facts) -> list[str]:
    return [q for q, _ in facts]


def test_protocol_cuts_every_list_to_the_first_n():
    task = limit_task()
    limited, full = context(LIMIT), context(None)
    membership = attack_inputs.membership_set(task, limited).value
    assert [r.context for r in membership.members] == [plain_prompt(q) for q in questions(FORGET[:LIMIT])]
    assert [r.context for r in membership.nonmembers] == [plain_prompt(q) for q in questions(HOLDOUT[:LIMIT])]
    assert [f.question for f in attack_inputs.forget_facts(task, limited).value] == questions(FORGET[:LIMIT])
    assert [f.question for f in attack_inputs.retain_facts(task, limited).value] == questions(RETAIN[:LIMIT])
    data = attack_inputs.unlearning_data(task, limited)
    assert [len(data.forget), len(data.retain), len(data.holdout)] == [LIMIT] * 3
    # without a limit every item; and the task's own unlearning data (what methods train on) is never cut
    assert len(attack_inputs.membership_set(task, full).value.members) == len(FORGET)
    assert len(attack_inputs.forget_facts(task, full).value) == len(FORGET)
    assert len(task.unlearning_data(limited).forget) == len(FORGET)


def test_limit_counts_facts_after_documents_are_skipped_and_keeps_zlib_texts_aligned():
    class Mixed(AttackQATask):
        def unlearning_data(self, ctx):
            documents = [TextExample("", "A document."), TextExample("", "Another document.")]
            return UnlearningData(forget=documents + [TextExample(ctx.chat(q), a) for q, a in FORGET], retain=[])

        def membership_requests(self, ctx):
            members = [mu_eval.Score(ctx.chat(q), a) for q, a in FORGET]
            nonmembers = [mu_eval.Score(ctx.chat(q), a) for q, a in HOLDOUT]
            return attack_inputs.MembershipSet(members, nonmembers, member_texts=[a for _, a in FORGET],
                                          nonmember_texts=[a for _, a in HOLDOUT])

    task, ctx = Mixed(), context(LIMIT)
    assert [f.question for f in attack_inputs.forget_facts(task, ctx).value] == questions(FORGET[:LIMIT])
    membership = attack_inputs.membership_set(task, ctx).value
    assert len(membership.members) == len(membership.nonmembers) == LIMIT
    assert membership.texts() == ([a for _, a in FORGET[:LIMIT]], [a for _, a in HOLDOUT[:LIMIT]])


@pytest.mark.parametrize("limit", [LIMIT, None])
def test_a_plugin_attack_sees_the_first_n_items(trained, drawing_attack, tmp_path, limit):
    report = mu_eval.evaluate(trained, [limit_task()], attacks=[drawing_attack], limit=limit, progress=False,
                              output_path=tmp_path)
    section = report.data["attacks"][drawing_attack]
    seen = section["tasks"]["attack_test_qa"]
    forget, retain, holdout = (facts[:limit] for facts in (FORGET, RETAIN, HOLDOUT))
    assert seen["forget_questions"] == questions(forget)
    assert seen["retain_questions"] == questions(retain)
    assert seen["members"] == [plain_prompt(q) for q in questions(forget)]
    assert seen["nonmembers"] == [plain_prompt(q) for q in questions(holdout)]
    assert seen["answers"] == len(forget) + len(holdout)
    assert seen["unlearning"] == {"forget": len(forget), "retain": len(retain), "holdout": len(holdout)}
    # the harness records the limit in every attack section, as config.limit records it for the tasks
    assert section["limit"] == limit and report.data["config"]["limit"] == limit
    validate_report(mu_eval.load_report(tmp_path).data)


def test_builtin_attacks_draw_the_first_n_items(trained):
    options = {"mia": {"scores": "loss;min_k"}, "ununlearning": {"max_new_tokens": "4"},
               "reasoning": {"k": "1", "max_new_tokens": "4"}, "relearn": {"steps": "0", "fraction": "1"}}
    attacks = list(options)
    limited = mu_eval.evaluate(trained, [limit_task()], attacks=attacks, attack_options=options, limit=LIMIT,
                               progress=False).data["attacks"]
    full = mu_eval.evaluate(trained, [limit_task()], attacks=["mia"], attack_options=options,
                            progress=False).data["attacks"]
    assert all(limited[name]["limit"] == LIMIT for name in attacks) and full["mia"]["limit"] is None

    mia, mia_full = limited["mia"]["tasks"]["attack_test_qa"], full["mia"]["tasks"]["attack_test_qa"]
    assert (mia["n_members"], mia["n_nonmembers"]) == (LIMIT, LIMIT)
    assert (mia_full["n_members"], mia_full["n_nonmembers"]) == (len(FORGET), len(HOLDOUT))
    for score in ("loss", "min_k"):  # the first N of the unlimited run's per-item scores, in order
        assert mia["items"][score]["members"] == pytest.approx(mia_full["items"][score]["members"][:LIMIT])
        assert mia["items"][score]["nonmembers"] == pytest.approx(mia_full["items"][score]["nonmembers"][:LIMIT])

    ununlearning = limited["ununlearning"]["tasks"]["attack_test_qa"]
    assert ununlearning["n"] == LIMIT
    assert [item["question"] for item in ununlearning["items"]] == questions(FORGET[:LIMIT])

    reasoning = limited["reasoning"]["tasks"]["attack_test_qa"]
    assert reasoning["n_facts"] == LIMIT and reasoning["n_prompts"]["direct"] == LIMIT
    assert sorted({item["fact"] for item in reasoning["items"]}) == list(range(LIMIT))
    assert reasoning["suppression"]["n_facts"] == LIMIT

    relearn = limited["relearn"]["tasks"]["attack_test_qa"]
    assert relearn["n_forget"] == LIMIT and relearn["relearn_indices"] == list(range(LIMIT))


def test_cli_limit_reaches_the_attacks_and_the_report(registered_tasks, trained_checkpoint, tmp_path, capsys):
    code = main(["--model", str(trained_checkpoint), "--tasks", "attack_test_qa", "--attacks", "mia",
                 "--attack-args", "scores=loss", "--limit", "1", "--output-path", str(tmp_path),
                 "--device", "cpu", "--no-cache", "--quiet"])
    assert code == 0, capsys.readouterr().err
    data = mu_eval.load_report(tmp_path).data  # validated on the way in
    mia = data["attacks"]["mia"]
    assert data["config"]["limit"] == 1 and mia["limit"] == 1
    assert (mia["tasks"]["attack_test_qa"]["n_members"], mia["tasks"]["attack_test_qa"]["n_nonmembers"]) == (1, 1)
    assert len(mia["tasks"]["attack_test_qa"]["items"]["loss"]["members"]) == 1


def test_help_says_the_limit_covers_attacks(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "attacks draw from tasks" in " ".join(capsys.readouterr().out.split())
