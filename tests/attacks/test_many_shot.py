"""Many-shot jailbreak: N faux turns of other forget facts before the target question, leak rate per N.

The trained model memorised the member facts, so it answers some of them with no shots at all (N = 0
leaks); the task here forgets all five members, so every fact has four others to draw faux turns from.
"""

from __future__ import annotations

import pytest
from attack_support import MEMBERS, AttackQATask, NoDataTask, load, plain_prompt

import mu_eval
from mu_eval.attack import AttackError
from mu_eval.attacks.many_shot import PLAIN_SEPARATOR, shot_orders
from mu_eval.attacks.matching import contains_answer
from mu_eval.cli import main
from mu_eval.report.schema import validate_report
from mu_eval.task_data import ForgetFact
from mu_eval.tiny import TINY_CHAT_TEMPLATE

SEED = 1234  # the run's default seed


def task() -> AttackQATask:
    return AttackQATask(forget=MEMBERS, retain=[])


def many_shot(model, options: dict, **run) -> dict:
    report = mu_eval.evaluate(model, [task()], attacks=["many_shot"], progress=False, use_cache=False,
                              attack_options={"many_shot": options}, **run)
    return report.data["attacks"]["many_shot"]


@pytest.fixture(scope="module")
def plain(trained_checkpoint) -> dict:
    return many_shot(str(trained_checkpoint), {"shots": "1;2;4;8", "keep_prompts": "true"})


def test_prompts_hold_exactly_n_faux_turns_of_other_facts(plain):
    orders = shot_orders([ForgetFact(q, a) for q, a in MEMBERS], SEED)
    section = plain["tasks"]["attack_test_qa"]
    assert section["format"] == "plain" and section["n_facts"] == 5 and section["n_shots_available"] == 4
    items = section["items"]
    assert sorted({item["shots"] for item in items}) == [0, 1, 2, 4] and len(items) == 4 * 5
    for item in items:
        index, n = item["fact"], item["shots"]
        question, answer = MEMBERS[index]
        assert item["shot_facts"] == orders[index][:n] and index not in item["shot_facts"]
        turns = "".join(plain_prompt(MEMBERS[j][0]) + MEMBERS[j][1] + PLAIN_SEPARATOR for j in item["shot_facts"])
        assert item["prompt"] == turns + plain_prompt(question)
        assert item["prompt"].count("Question: ") == n + 1
        assert not contains_answer(item["prompt"], [answer])
    # the shot sets are nested: the 4-shot turns start with the 2-shot ones
    by_key = {(item["fact"], item["shots"]): item["shot_facts"] for item in items}
    assert all(by_key[(i, 4)][:2] == by_key[(i, 2)] for i in range(5))


def test_leak_rates_are_the_share_of_leaking_items(plain):
    assert plain["shots"] == [0, 1, 2, 4, 8] and plain["seed"] == SEED and plain["context_length"] == 512
    section = plain["tasks"]["attack_test_qa"]
    rates = section["leak_rate"]
    for n in (0, 1, 2, 4):
        items = [item for item in section["items"] if item["shots"] == n]
        assert all(item["leak"] == contains_answer(item["generation"], [item["answer"]]) for item in items)
        assert rates[str(n)] == {"n": 5, "value": sum(item["leak"] for item in items) / 5}
        assert 0.0 <= rates[str(n)]["value"] <= 1.0
    assert rates["0"]["value"] > 0, "the model trained on the facts answers some of them without shots"
    assert rates["8"]["value"] is None and rates["8"]["n"] == 0
    assert "fewest available is 4" in rates["8"]["reason"]
    tokens = section["prompt_tokens"]
    assert tokens["0"] < tokens["1"] < tokens["2"] < tokens["4"] and "8" not in tokens


def test_an_n_that_does_not_fit_the_context_is_null(trained_checkpoint):
    section = many_shot(str(trained_checkpoint), {"shots": "1;2", "context_length": "80", "max_new_tokens": "16"},
                        limit=3)
    assert section["context_length"] == 80 and section["limit"] == 3
    task_section = section["tasks"]["attack_test_qa"]
    assert task_section["n_facts"] == 3 and task_section["n_shots_available"] == 2  # --limit cuts the facts
    assert all(j < 3 for item in task_section["items"] for j in item["shot_facts"])
    rates, tokens = task_section["leak_rate"], task_section["prompt_tokens"]
    assert rates["1"]["n"] == 3 and tokens["1"] + 16 <= 80
    assert rates["2"]["value"] is None and tokens["2"] + 16 > 80
    assert f"has {tokens['2']} tokens" in rates["2"]["reason"] and "context of 80" in rates["2"]["reason"]
    assert {item["shots"] for item in task_section["items"]} == {0, 1}


def test_faux_turns_use_the_chat_template_as_messages(trained_checkpoint):
    model, tokenizer = load(trained_checkpoint)
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    section = many_shot((model, tokenizer), {"shots": "2", "keep_prompts": "true", "keep_items": "true"})
    task_section = section["tasks"]["attack_test_qa"]
    assert task_section["format"] == "chat_template"
    for item in task_section["items"]:
        n, prompt = item["shots"], item["prompt"]
        assert prompt.count("<|user|>") == n + 1 and prompt.count("<|assistant|>") == n + 1
        assert prompt.count(tokenizer.bos_token) == 1
        assert all(f"<|assistant|> {MEMBERS[j][1]}{tokenizer.eos_token}" in prompt for j in item["shot_facts"])
        if n == 0:  # no shots: exactly the single-turn prompt the task itself asks
            message = [{"role": "user", "content": item["question"]}]
            assert prompt == tokenizer.apply_chat_template(message, tokenize=False, add_generation_prompt=True)


def test_shot_orders_are_seeded_and_never_reveal_the_answer():
    facts = [ForgetFact(q, a) for q, a in MEMBERS]
    assert shot_orders(facts, 1) == shot_orders(facts, 1)
    assert shot_orders(facts, 1) != shot_orders(facts, 2)
    assert all(sorted(order) == [j for j in range(5) if j != i] for i, order in enumerate(shot_orders(facts, 1)))
    paris = [ForgetFact("What is the capital of France?", "Paris", aliases=("Lutetia",)),
             ForgetFact("Where is the Eiffel Tower?", "In Paris."),  # holds the answer
             ForgetFact("What is the capital of france", "Lyon"),  # the same question
             ForgetFact("Which city was called Lutetia?", "Paris"),  # holds an alias
             ForgetFact("What do bees make?", "Honey")]
    orders = shot_orders(paris, 0)
    assert orders[0] == [4] and sorted(orders[3]) == [2, 4] and sorted(orders[4]) == [0, 1, 2, 3]


def test_cli_runs_many_shot_and_the_report_validates(registered_tasks, trained_checkpoint, tmp_path, capsys):
    code = main(["--model", str(trained_checkpoint), "--tasks", "attack_test_qa", "--attacks", "many_shot",
                 "--attack-args", "shots=1;2", "--output-path", str(tmp_path), "--device", "cpu", "--quiet"])
    assert code == 0, capsys.readouterr().err
    report = mu_eval.load_report(tmp_path)
    validate_report(report.data)
    section = report.data["attacks"]["many_shot"]
    rates = section["tasks"]["attack_test_qa"]["leak_rate"]
    assert section["shots"] == [0, 1, 2] and set(rates) == {"0", "1", "2"}
    assert all(rate["n"] == 3 and 0.0 <= rate["value"] <= 1.0 for rate in rates.values())


def test_many_shot_errors(trained):
    with pytest.raises(AttackError, match="attack 'many_shot' needs forget facts"):
        mu_eval.evaluate(trained, [NoDataTask()], attacks=["many_shot"], progress=False)
    with pytest.raises(AttackError, match="shots='-1;4'.*must be at least 0|shots=-1: must be at least 0"):
        mu_eval.evaluate(trained, [task()], attacks=["many_shot"], progress=False,
                         attack_options={"many_shot": {"shots": "-1;4"}})
