"""In-context ununlearning and the step-by-step reasoning attack on the probe model.

The probe model refuses forget questions asked plainly, answers them with the fact in context, answers
the related-facts context for the first fact only, leaks under direct prompts and (first fact only)
implied prompts, and answers direct prompts about the first retain fact only; the attacks must measure
exactly that.
"""

from __future__ import annotations

import pytest
from attack_support import AttackQATask, NoDataTask, ProbeTask, probe_facts

import mu_eval
from mu_eval.attack import AttackError
from mu_eval.attacks.matching import contains_answer
from mu_eval.attacks.reasoning import attacker_messages, build_messages, cloze
from mu_eval.attacks.ununlearning import condition_messages


def test_ununlearning_rates_on_the_probe_model(probe_checkpoint):
    report = mu_eval.evaluate(str(probe_checkpoint), [ProbeTask()], attacks=["ununlearning"], progress=False,
                              attack_options={"ununlearning": {"reference_model": str(probe_checkpoint)}})
    task = report.data["attacks"]["ununlearning"]["tasks"]["attack_test_probe"]
    assert task["n"] == 2 and task["n_related"] == 2
    assert task["accuracy"] == {"none": 0.0, "fact": 1.0, "related": 0.5, "control": 0.0}
    assert task["ununlearning_rate"] == {"fact": 1.0, "related": 0.5, "control": 0.0}
    first = task["items"][0]
    assert first["match"] == {"none": False, "fact": True, "related": True, "control": False}
    assert "Paris" in first["generations"]["fact"] and "know" in first["generations"]["none"]
    # the same model as its own reference: identical accuracies, zero gaps
    assert task["reference"]["accuracy"] == task["accuracy"]
    assert task["gap_to_reference"] == {"none": 0.0, "fact": 0.0, "related": 0.0, "control": 0.0}


def test_reasoning_leak_and_suppression_rates(probe_checkpoint):
    report = mu_eval.evaluate(str(probe_checkpoint), [ProbeTask()], attacks=["reasoning"], progress=False)
    task = report.data["attacks"]["reasoning"]["tasks"]["attack_test_probe"]
    assert task["n_prompts"] == {"direct": 6, "indirect": 6, "implied": 6}
    assert task["leak_rate"] == {"direct": 1.0, "indirect": 0.0, "implied": 0.5}
    assert task["facts_leaked"] == {"direct": 1.0, "indirect": 0.0, "implied": 0.5}
    assert task["leak_rate_by_source"]["direct"] == {"template": 1.0, "attacker": None}
    suppression = task["suppression"]
    assert not suppression["conditioned_on_reference"]
    assert suppression["fail_rate"] == {"direct": 0.5, "indirect": 1.0, "implied": 1.0}
    assert all(item["prompt"].endswith("Let's think step by step.") or "step by step" in item["prompt"]
               for item in task["items"])


def test_reasoning_suppression_conditioned_on_a_reference_and_attacker_prompts(probe_checkpoint):
    options = {"reasoning": {"k": "1", "reference_model": str(probe_checkpoint),
                             "attacker_model": str(probe_checkpoint), "max_new_tokens": "24"}}
    report = mu_eval.evaluate(str(probe_checkpoint), [ProbeTask()], attacks=["reasoning"], progress=False,
                              attack_options=options)
    task = report.data["attacks"]["reasoning"]["tasks"]["attack_test_probe"]
    suppression = task["suppression"]
    assert suppression["conditioned_on_reference"]
    # the reference answers the first retain fact's direct prompt and so does the model: no suppression
    assert suppression["reference_answered"]["direct"] == 0.5 and suppression["suppression_rate"]["direct"] == 0.0
    assert suppression["suppression_rate"]["indirect"] is None  # the reference answered none of them
    attacker = [item for item in task["items"] if item["source"] == "attacker"]
    forget = probe_facts()[0]
    assert all(forget[item["fact"]].answer.lower() not in item["prompt"].lower() for item in attacker)


def test_prompt_builders():
    forget, retain = probe_facts()
    messages = build_messages(forget[0], 3)
    assert {k: len(v) for k, v in messages.items()} == {"direct": 3, "indirect": 3, "implied": 3}
    assert all(forget[0].question in m for m in messages["direct"] + messages["indirect"])
    assert all(forget[0].question not in m for m in messages["implied"])
    assert cloze(forget[1]) == "Hamlet was written by William"
    assert cloze(forget[0]) is None  # the answer opens the statement: no cloze
    assert len(build_messages(forget[0], 10)["direct"]) == 4
    plain = build_messages(retain[0], 3)
    assert len(plain["indirect"]) == 3 and all(retain[0].question in m for m in plain["indirect"])
    assert plain["implied"] == []  # the answer opens the statement and there are no related facts
    assert build_messages(retain[1], 3)["implied"] == [
        "Complete the statement: \"Bees make ...\" Let's think step by step.",
        "Here is the beginning of a sentence: \"Bees make\" Reason about how it must end. Let's think step by step.",
    ]
    conditions = condition_messages(forget, retain, "{context}\n\n{question}")
    assert conditions["fact"][0] == f"{forget[0].fact}\n\n{forget[0].question}"
    assert conditions["control"][0].startswith(retain[0].fact)
    assert conditions["none"] == [f.question for f in forget]
    dropped = attacker_messages(forget[:1], 1, "Think.", lambda ms: ["Is it Paris?", "Where is it?", ""])
    assert dropped[0] == {"direct": [], "indirect": ["Where is it? Think."], "implied": []}


def test_default_facts_come_from_unlearning_data(trained):
    # AttackQATask has no forget_facts: facts are derived from its prompts and whole answers
    report = mu_eval.evaluate(trained, [AttackQATask()], attacks=["ununlearning", "reasoning"], progress=False,
                              attack_options={"ununlearning": {"max_new_tokens": "16"},
                                              "reasoning": {"k": "1", "max_new_tokens": "16"}})
    ununlearning = report.data["attacks"]["ununlearning"]["tasks"]["attack_test_qa"]
    assert ununlearning["n"] == 3 and ununlearning["n_related"] == 0
    assert ununlearning["accuracy"]["related"] is None and ununlearning["ununlearning_rate"]["related"] is None
    matches = [contains_answer(item["generations"]["none"], [item["answer"]]) for item in ununlearning["items"]]
    assert [item["match"]["none"] for item in ununlearning["items"]] == matches
    assert ununlearning["accuracy"]["none"] == pytest.approx(sum(matches) / 3)
    assert ununlearning["items"][0]["question"] == AttackQATask().forget[0][0]
    reasoning = report.data["attacks"]["reasoning"]["tasks"]["attack_test_qa"]
    assert reasoning["n_prompts"]["direct"] == 3 and reasoning["suppression"]["n_facts"] == 2


@pytest.mark.parametrize("attack", ["ununlearning", "reasoning"])
def test_generation_attacks_need_facts(trained, attack):
    with pytest.raises(AttackError, match=f"attack '{attack}' needs forget facts"):
        mu_eval.evaluate(trained, [NoDataTask()], attacks=[attack], progress=False)


def test_ununlearning_template_must_have_both_fields(trained):
    with pytest.raises(AttackError, match="template must contain"):
        mu_eval.evaluate(trained, [AttackQATask()], attacks=["ununlearning"], progress=False,
                         attack_options={"ununlearning": {"template": "{question}"}})
