"""Attack options (types, lists, unknown keys) and the defaults of what attacks draw from tasks."""

from __future__ import annotations

import pytest
from attack_support import AttackQATask, NoDataTask, plain_prompt

from mu_eval import attack_inputs
from mu_eval.attack import AttackError
from mu_eval.attacks.matching import contains_answer, normalize_answer
from mu_eval.attacks.mia import MembershipInference
from mu_eval.attacks.relearn import RelearnAttack
from mu_eval.backend import PLAIN_PROMPT
from mu_eval.options import OptionError, option_names, route_options
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
        ({"stepz": "1"}, "no option 'stepz' \\(did you mean 'steps'\\?\\)"),
        ({"fraction": "a lot"}, "fraction='a lot': expected a number"),
        ({"lora": "maybe"}, "expected true or false"),
        ({"steps": "1;x"}, "expected an integer"),
        ({"fraction": "2"}, "fraction=2.0: must be at most 1"),
        ({"steps": "0;-5"}, "steps=-5: must be at least 0"),
    ],
)
def test_bad_options_are_clear_errors(options, message):
    with pytest.raises(AttackError, match=message):
        RelearnAttack(**options)


def test_attack_args_are_shared_out_by_the_keys_each_attack_declares():
    # one `--attack-args` string serves every attack of the run: mia's k is not relearn's business, and back
    accepted = {"relearn": option_names(RelearnAttack.Options), "mia": option_names(MembershipInference.Options)}
    routed = route_options({"k": "0.3", "steps": "0;1", "mia.scores": "loss;min_k"}, accepted, "attack")
    assert routed == {"relearn": {"steps": "0;1"}, "mia": {"k": "0.3", "scores": "loss;min_k"}}
    relearn, mia = RelearnAttack(**routed["relearn"]), MembershipInference(**routed["mia"])
    assert relearn.config["steps"] == [0, 1] and mia.config["k"] == 0.3 and mia.config["scores"] == ["loss", "min_k"]
    with pytest.raises(OptionError, match="no attack 'nosuchattack'"):
        route_options({"nosuchattack.k": "1"}, accepted, "attack")
    with pytest.raises(OptionError, match="attack 'relearn' has no option 'k'"):
        route_options({"relearn.k": "1"}, accepted, "attack")
    with pytest.raises(OptionError, match="no attack of this run \\('relearn', 'mia'\\) has the option 'bogus'"):
        route_options({"bogus": "1"}, accepted, "attack")
    with pytest.raises(AttackError, match="expected one of"):
        MembershipInference(scores="loss;perplexity")


def context(chat=None) -> TaskContext:
    return TaskContext(load=lambda spec: [], chat=chat or (lambda q: PLAIN_PROMPT.format(question=q)),
                       uses_chat_template=False)


def test_default_protocol_from_unlearning_data():
    task = AttackQATask()
    ctx = context()
    membership = attack_inputs.membership_set(task, ctx)
    assert membership.derived and len(membership.value.members) == 3 and len(membership.value.nonmembers) == 5
    assert membership.value.members[0].context == plain_prompt(task.forget[0][0])
    assert membership.value.texts()[0][0] == task.forget[0][1]
    facts = attack_inputs.forget_facts(task, ctx).value
    assert [(f.question, f.answer) for f in facts] == task.forget
    assert facts[0].statement() == f"{task.forget[0][0]} {task.forget[0][1]}"
    assert [f.question for f in attack_inputs.retain_facts(task, ctx).value] == [q for q, _ in task.retain]
    names, declared = attack_inputs.forget_metric_names(task, task_result(task, ctx))
    assert names == ["forget_probability"] and declared


def task_result(task, ctx):
    from mu_eval.requests import ScoreResult

    result = ScoreResult((-0.5,), (True,), (-1.0,), (0.5,))
    return task.process_results([result] * (len(task.forget) + len(task.retain)), ctx)


def test_protocol_reports_what_is_missing():
    ctx = context()
    assert attack_inputs.membership_set(NoDataTask(), ctx).value is None
    assert "neither membership_requests nor unlearning_data" in attack_inputs.membership_set(NoDataTask(), ctx).reason
    no_holdout = AttackQATask(holdout=[])
    assert "no forget or no holdout" in attack_inputs.membership_set(no_holdout, ctx).reason
    assert "no retain examples" in attack_inputs.retain_facts(AttackQATask(retain=[]), ctx).reason


def test_documents_are_scored_without_eos_and_give_no_facts():
    from mu_eval.task import TextExample, UnlearningData

    class Documents(NoDataTask):
        def unlearning_data(self, ctx):
            texts = [TextExample("", "A forgotten document."), TextExample("", "Another one.")]
            return UnlearningData(forget=texts[:1], retain=texts[1:], holdout=texts[1:])

    ctx = context()
    membership = attack_inputs.membership_set(Documents(), ctx).value
    assert membership.members[0].context == "" and not membership.members[0].append_eos
    assert "documents, not questions: implement forget_facts" in attack_inputs.forget_facts(Documents(), ctx).reason


def test_unformat_prompt_inverts_chat_templates(tiny_checkpoint):
    from mu_eval.backends.hf import HFBackend

    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    backend.tokenizer.chat_template = TINY_CHAT_TEMPLATE
    chat = backend.chat_formatter()
    prompt = chat("Who wrote Hamlet?")
    assert prompt.startswith("<s><|user|>")
    assert attack_inputs.unformat_prompt(prompt, chat) == "Who wrote Hamlet?"
    assert attack_inputs.unformat_prompt("something else", chat) is None
    plain = context().chat
    assert attack_inputs.unformat_prompt(plain("What is ice?"), plain) == "What is ice?"


def test_answer_matching_is_normalised_on_word_boundaries():
    assert normalize_answer("The  Eiffel-Tower, in PARIS!") == "eiffel tower in paris"
    assert contains_answer("I think it is paris.", ["Paris"])
    assert contains_answer("Café au lait", ["cafe"])
    assert not contains_answer("Parisian food", ["Paris"])
    assert not contains_answer("anything", [""])
