"""The synthetic profile generator: deterministic, TOFU's schema, disjoint splits, perturbations of the right type."""

from __future__ import annotations

import json

import pytest

from mu_eval.plugins import get_registry
from mu_eval.tasks.synthetic_profiles.facts import REAL_AUTHORS, WORLD_FACTS
from mu_eval.tasks.synthetic_profiles.generator import (
    ATTRIBUTES,
    PERTURBED,
    build_benchmark,
    generate_profiles,
    split_size,
    write_benchmark,
)
from mu_eval.tasks.synthetic_profiles.task import SyntheticProfilesTask
from mu_eval.tasks.tofu.task import TofuTask

PEOPLE = 40


@pytest.fixture(scope="module")
def benchmark():
    return build_benchmark(PEOPLE, seed=7)


def people_of(rows: list[dict]) -> set[str]:
    """Names appear in every answer; the first row of a person asks for the name itself."""
    return {row["answer"].removeprefix("The author's full name is ").rstrip(".")
            for row in rows if row["answer"].startswith("The author's full name is ")}


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    assert build_benchmark(PEOPLE, 7) == build_benchmark(PEOPLE, 7)
    assert build_benchmark(PEOPLE, 7) != build_benchmark(PEOPLE, 8)
    first = [p.name for p in generate_profiles(10, 1)]
    assert first == [p.name for p in generate_profiles(10, 1)] and len(set(first)) == 10
    # the written files are byte-identical across runs too (what --data-dir users get)
    written = [path.read_bytes() for path in write_benchmark(tmp_path / "a", PEOPLE, 7)]
    assert written == [path.read_bytes() for path in write_benchmark(tmp_path / "b", PEOPLE, 7)]


def test_tofu_schema_and_sizes(benchmark):
    assert len(ATTRIBUTES) + 1 == 20  # 19 attributes and the identity question
    assert len(benchmark["full"]) == PEOPLE * 20 + len(REAL_AUTHORS) + len(WORLD_FACTS)
    for split in ("forget01", "forget05", "forget10"):
        percent = split.removeprefix("forget")
        size = split_size(split, PEOPLE)
        assert len(benchmark[split]) == len(benchmark[f"{split}_perturbed"]) == 20 * size
        assert len(benchmark[f"holdout{percent}"]) == 20 * size
        assert len(benchmark[f"retain{100 - int(percent):02d}"]) + len(benchmark[split]) == len(benchmark["full"])
    assert [split_size(s, PEOPLE) for s in ("forget01", "forget05", "forget10")] == [1, 2, 4]
    for row in benchmark["forget10_perturbed"] + benchmark["retain_perturbed"]:
        assert set(row) == {"question", "answer", "paraphrased_question", "paraphrased_answer", "perturbed_answer",
                            "short_answer"}
        assert row["short_answer"] in row["answer"] and row["short_answer"] in row["paraphrased_answer"]
        assert len(row["perturbed_answer"]) == PERTURBED == len(set(row["perturbed_answer"]))
        assert row["paraphrased_answer"] not in row["perturbed_answer"]
    for config in ("real_authors_perturbed", "world_facts_perturbed"):
        for row in benchmark[config]:
            assert len(row["perturbed_answer"]) == 3 and row["answer"] not in row["perturbed_answer"]


def test_splits_are_nested_and_disjoint(benchmark):
    forget = {split: people_of(benchmark[split]) for split in ("forget01", "forget05", "forget10")}
    assert forget["forget01"] < forget["forget05"] < forget["forget10"]
    trained = people_of(benchmark["full"])
    holdout = people_of(benchmark["holdout10"])
    assert len(trained) == PEOPLE and len(holdout) == 4
    assert holdout.isdisjoint(trained)
    assert people_of(benchmark["holdout01"]) < people_of(benchmark["holdout10"])
    assert people_of(benchmark["retain_perturbed"]).isdisjoint(forget["forget10"])
    assert people_of(benchmark["retain90"]) == trained - forget["forget10"]
    questions = {row["question"] for row in benchmark["forget10"]}
    assert questions.isdisjoint(row["question"] for row in benchmark["retain90"])


def test_perturbed_answers_swap_only_the_value(benchmark):
    """Perturbations fill the paraphrase template with another value of the same type: the truth ratio
    then compares facts, not phrasing."""
    rows = benchmark["forget10_perturbed"]
    for row in rows:
        paraphrase = row["paraphrased_answer"]
        for wrong in row["perturbed_answer"]:
            prefix = 0
            while prefix < min(len(paraphrase), len(wrong)) and paraphrase[prefix] == wrong[prefix]:
                prefix += 1
            # the shared start covers the template up to the value (articles a/an may differ)
            assert prefix >= min(len(paraphrase), len(wrong)) // 3, (paraphrase, wrong)
    # the person's true birthplace never appears among the wrong birthplaces
    birthplace = [row for row in rows if row["question"].startswith("Where was ")]
    for row in birthplace:
        city = row["answer"].split(" was born in ")[1].rstrip(".")
        assert all(not wrong.endswith(f" {city}.") for wrong in row["perturbed_answer"])


def test_general_knowledge_stand_ins_are_trained_and_evaluated(benchmark):
    full_questions = {row["question"] for row in benchmark["full"]}
    for config in ("real_authors_perturbed", "world_facts_perturbed"):
        assert {row["question"] for row in benchmark[config]} <= full_questions


def test_synthetic_tasks_reuse_the_tofu_task(benchmark):
    registry = get_registry()
    for split in ("forget01", "forget05", "forget10"):
        task = registry.task(f"synthetic_{split}", people=str(PEOPLE), data_seed="7")
        assert isinstance(task, SyntheticProfilesTask) and isinstance(task, TofuTask)
        assert type(task).process_results is TofuTask.process_results
        assert task.config()["people"] == PEOPLE and task.config()["data_seed"] == 7
    with pytest.raises(ValueError, match="data_seed"):
        SyntheticProfilesTask(data_seed="x")
    with pytest.raises(ValueError, match="at least 10 people"):
        build_benchmark(5, 0)


def test_written_files_are_json_lines_named_like_tofu_configs(tmp_path):
    paths = {path.name for path in write_benchmark(tmp_path, 20, 1)}
    assert {"forget10_perturbed.json", "retain_perturbed.json", "real_authors_perturbed.json",
            "world_facts_perturbed.json", "holdout10.json", "retain90.json", "full.json"} <= paths
    lines = (tmp_path / "holdout01.json").read_text().splitlines()
    assert len(lines) == 20 and set(json.loads(lines[0])) == {"question", "answer", "short_answer"}


def test_forget_facts_carry_the_bare_value_for_the_generation_attacks(benchmark):
    """The reasoning and ununlearning attacks count a leak when a generation names the value; the task
    hands them the value, not the full sentence."""
    from mu_eval.attack_inputs import forget_facts, retain_facts
    from mu_eval.task import TaskContext

    task = get_registry().task("synthetic_forget10", people=PEOPLE, data_seed=7)
    ctx = TaskContext(load=lambda spec: [], chat=lambda q: q, uses_chat_template=False)
    forget = forget_facts(task, ctx)
    retain = retain_facts(task, ctx)
    assert not forget.derived and len(forget.value) == len(benchmark["forget10"])
    assert [f.question for f in forget.value] == [row["question"] for row in benchmark["forget10"]]
    for fact, row in zip(forget.value, benchmark["forget10"]):
        assert fact.answer == row["short_answer"] and fact.answer in fact.fact and fact.answer != row["answer"]
    assert len(retain.value) == sum(1 for row in benchmark["retain90"] if "short_answer" in row) > 0
