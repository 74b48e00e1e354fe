"""Attack options (types, lists, unknown keys) and the task protocol's defaults."""

from __future__ import annotations

import pytest
from attack_support import AttackQATask, NoDataTask, plain_prompt

from mu_eval.attack import AttackError
from mu_eval.attacks import protocol
from mu_eval.attacks.matching import contains_answer, normalize_answer
from mu_eval.attacks.mia import MembershipInference
from mu_eval.attacks.relearn import RelearnAttack
from mu_eval.backends.base import PLAIN_PROMPT
from mu_eval.task import TaskContext
from mu_eval.tiny import TINY_CHAT_TEMPLATE


def test_options_are_converted_from_strings():
    attack = RelearnAttack(steps="0;5|20", fraction="0.5", lora="false", lr="1e-3", original_model="")
    assert attack.config["steps"] == [0, 5, 20]
    assert attack.config["fraction"] == 0.5 and attack.config["lora"] is False and attack.config["lr"] == 1e-3
    assert attack.config["original_model"] is None
    assert RelearnAttack(steps=[0, 3]).config["steps"] == [0, 3]
    assert RelearnAttack().config["steps"] == [0, 10, 25, 50, 100]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stepz": "1"}, "unknown option 'stepz'"),
        ({"fraction": "a lot"}, "fraction='a lot' is not a number"),
        ({"lora": "maybe"}, "is not true or false"),
        ({"steps": "1;x"}, "is not an integer"),
        ({"nosuchattack.k": "1"}, "no attack named 'nosuchattack'"),
        ({"relearn.k": "0.3"}, "unknown option 'k'"),
    ],
)
def test_bad_options_are_clear_errors(options, message):
    with pytest.raises(AttackError, match=message):
        RelearnAttack(**options)


def test_keys_of_other_attacks_are_left_to_them():
    # `--attack-args` reaches every attack of the run: mia's k is not relearn's business, and back
    relearn = RelearnAttack(k="0.3", steps="0;1", **{"mia.scores": "loss"})
    assert "k" not in relearn.config and relearn.config["steps"] == [0, 1]
    mia = MembershipInference(k="0.3", steps="0;1", **{"mia.scores": "loss;min_k"})
    assert mia.config["k"] == 0.3 and mia.config["scores"] == ["loss", "min_k"]
    with pytest.raises(AttackError, match="expected one of"):
        MembershipInference(scores="loss;perplexity")


def context(chat=None) -> TaskContext:
    return TaskContext(load=lambda spec: [], chat=chat or (lambda q: PLAIN_PROMPT.format(question=q)),
                       uses_chat_template=False)


def test_default_protocol_from_unlearning_data():
    task = AttackQATask()
    ctx = context()
    membership = protocol.membership_set(task, ctx)
    assert membership.derived and len(membership.value.members) == 3 and len(membership.value.nonmembers) == 5
    assert membership.value.members[0].context == plain_prompt(task.forget[0][0])
    assert membership.value.texts()[0][0] == task.forget[0][1]
    facts = protocol.forget_facts(task, ctx).value
    assert [(f.question, f.answer) for f in facts] == task.forget
    assert facts[0].statement() == f"{task.forget[0][0]} {task.forget[0][1]}"
    assert [f.question for f in protocol.retain_facts(task, ctx).value] == [q for q, _ in task.retain]
    names, declared = protocol.forget_metric_names(task, task_result(task, ctx))
    assert names == ["forget_probability"] and declared


def task_result(task, ctx):
    from mu_eval.requests import ScoreResult

    result = ScoreResult((-0.5,), (True,), (-1.0,), (0.5,))
    return task.process_results([result] * (len(task.forget) + len(task.retain)), ctx)


def test_protocol_reports_what_is_missing():
    ctx = context()
    assert protocol.membership_set(NoDataTask(), ctx).value is None
    assert "neither membership_requests nor unlearning_data" in protocol.membership_set(NoDataTask(), ctx).reason
    no_holdout = AttackQATask(holdout=[])
    assert "no forget or no holdout" in protocol.membership_set(no_holdout, ctx).reason
    assert "no retain examples" in protocol.retain_facts(AttackQATask(retain=[]), ctx).reason


def test_documents_are_scored_without_eos_and_give_no_facts():
    from mu_eval.task import TextExample, UnlearningData

    class Documents(NoDataTask):
        def unlearning_data(self, ctx):
            texts = [TextExample("", "A forgotten document."), TextExample("", "Another one.")]
            return UnlearningData(forget=texts[:1], retain=texts[1:], holdout=texts[1:])

    ctx = context()
    membership = protocol.membership_set(Documents(), ctx).value
    assert membership.members[0].context == "" and not membership.members[0].append_eos
    assert "documents, not questions: implement forget_facts" in protocol.forget_facts(Documents(), ctx).reason


def test_unformat_prompt_inverts_chat_templates(tiny_checkpoint):
    from mu_eval.backends.hf import HFBackend

    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    backend.tokenizer.chat_template = TINY_CHAT_TEMPLATE
    chat = backend.chat_formatter()
    prompt = chat("Who wrote Hamlet?")
    assert prompt.startswith("<s><|user|>")
    assert protocol.unformat_prompt(prompt, chat) == "Who wrote Hamlet?"
    assert protocol.unformat_prompt("something else", chat) is None
    plain = context().chat
    assert protocol.unformat_prompt(plain("What is ice?"), plain) == "What is ice?"


def test_answer_matching_is_normalised_on_word_boundaries():
    assert normalize_answer("The  Eiffel-Tower, in PARIS!") == "eiffel tower in paris"
    assert contains_answer("I think it is paris.", ["Paris"])
    assert contains_answer("Café au lait", ["cafe"])
    assert not contains_answer("Parisian food", ["Paris"])
    assert not contains_answer("anything", [""])
