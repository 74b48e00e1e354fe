"""The TOFU task end to end on a tiny model and local TOFU-schema files: batch-size invariance, one forward
pass per distinct text, null forget quality without a reference, options and the unlearning data."""

from __future__ import annotations

import json
import math

import pytest

import mu_eval
from mu_eval.backends.kv_cache import passed_cache
from mu_eval.plugins import get_registry
from mu_eval.tasks.synthetic_profiles.generator import build_benchmark, write_benchmark
from mu_eval.tasks.tofu.task import TofuTask

PEOPLE = 10
OPTIONS = {"max_new_tokens": 6}
TASK = "tofu_forget01"
SYNTHETIC = "synthetic_forget01"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """TOFU-named JSON-lines files (forget01_perturbed.json, retain_perturbed.json, ...) of a small benchmark."""
    directory = tmp_path_factory.mktemp("tofu-data")
    write_benchmark(directory, people=PEOPLE, seed=3)
    return directory


def run(model, data_dir, tasks=(TASK,), extra_options=None, **kwargs):
    """Evaluate with local files; the synthetic task gets the generator settings the files were written with."""
    synthetic = {"people": PEOPLE, "data_seed": 3}
    options = {name: {**OPTIONS, **(synthetic if name == SYNTHETIC else {}), **(extra_options or {})}
               for name in tasks}
    return mu_eval.evaluate(model, list(tasks), task_options=options, data_dir=data_dir, progress=False,
                            use_cache=False, **kwargs)


def metric_values(report, task):
    return {name: metric["value"] for name, metric in report.tasks[task]["metrics"].items()}


def assert_same_numbers(first: dict, second: dict, rel: float = 1e-4, abs_: float = 1e-6) -> None:
    assert first.keys() == second.keys()
    for key in first:
        a, b = first[key], second[key]
        if isinstance(a, list):
            assert len(a) == len(b), key
            for x, y in zip(a, b):
                assert (x is None and y is None) or math.isclose(x, y, rel_tol=rel, abs_tol=abs_), (key, x, y)
        else:
            assert (a is None and b is None) or math.isclose(a, b, rel_tol=rel, abs_tol=abs_), (key, a, b)


def test_batch_size_does_not_change_a_number_and_synthetic_equals_tofu_on_the_same_files(tiny_checkpoint, data_dir):
    small = run(str(tiny_checkpoint), data_dir, (TASK, SYNTHETIC), batch_size=1, limit=5)
    large = run(str(tiny_checkpoint), data_dir, (TASK, SYNTHETIC), batch_size=32, limit=5)
    for task in (TASK, SYNTHETIC):
        assert_same_numbers(metric_values(small, task), metric_values(large, task))
        assert_same_numbers(small.tasks[task]["items"], large.tasks[task]["items"])
    # the synthetic task reads the generator in memory, the TOFU task the written files: same data, same numbers
    assert_same_numbers(metric_values(small, TASK), metric_values(small, SYNTHETIC), rel=0, abs_=0)
    assert small["engine"]["batches"] > large["engine"]["batches"]
    metrics = small.tasks[TASK]["metrics"]
    for name, metric in metrics.items():
        assert isinstance(metric["n"], int) and metric["n"] > 0, name
        assert "higher_is_better" in metric
    assert metrics["forget_prob"]["n"] == 5 and metrics["model_utility"]["n"] == 15
    assert 0 < metrics["forget_prob"]["value"] < 1 and 0 <= metrics["model_utility"]["value"] <= 1


def expected_distinct_requests(data_dir, limit: int) -> tuple[int, int]:
    """Distinct (prompt, text) pairs to score and questions to generate for, counted from the files; the
    membership-inference sets are every forget and holdout row (mia_sets=all), whatever the limit."""

    def rows(config, whole=False):
        path = data_dir / f"{config}.json"
        found = [json.loads(line) for line in path.read_text().splitlines()]
        return found if whole else found[:limit]

    scored, generated = set(), set()
    for config, base in (("forget01_perturbed", "paraphrased_answer"), ("retain_perturbed", "paraphrased_answer"),
                         ("real_authors_perturbed", "answer"), ("world_facts_perturbed", "answer")):
        for row in rows(config):
            generated.add(row["question"])
            for text in (row["answer"], row[base], *row["perturbed_answer"]):
                scored.add((row["question"], text))
    for row in rows("holdout01", whole=True) + rows("forget01_perturbed", whole=True):
        scored.add((row["question"], row["answer"]))
    return len(scored), len(generated)


def test_one_forward_row_per_distinct_text(tiny_checkpoint, data_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    scored_rows: list[int] = []

    def count_scoring_rows(_module, args, kwargs):
        # generation asks for a KV cache (its first step may pass none yet); scoring never does either
        if passed_cache(kwargs) is None and not kwargs.get("use_cache"):
            ids = kwargs.get("input_ids", args[0] if args else None)
            scored_rows.append(int(ids.shape[0]))

    handle = model.model.register_forward_pre_hook(count_scoring_rows, with_kwargs=True)
    try:
        report = run((model, tokenizer), data_dir, batch_size=7, limit=6)
    finally:
        handle.remove()
    distinct_scores, questions = expected_distinct_requests(data_dir, 6)
    naive = 6 * (7 + 7 + 5 + 5) + 20 + 14  # every text of every item, the 20 holdout answers and 14 more forget ones
    assert distinct_scores < naive
    engine = report["engine"]
    assert engine["by_kind"] == {"score": distinct_scores, "generate": questions}
    assert engine["distinct"] == engine["answered"] == distinct_scores + questions
    assert engine["requested"] == engine["distinct"]  # the task itself asks each distinct text once
    assert sum(scored_rows) == distinct_scores


def test_forget_quality_and_privleak_need_a_reference(tiny_checkpoint, data_dir, tmp_path):
    alone = run(str(tiny_checkpoint), data_dir, limit=6, output_path=tmp_path / "reference")
    metrics = alone.tasks[TASK]["metrics"]
    for name in ("forget_quality", "privleak"):
        assert metrics[name]["value"] is None and "no reference" in metrics[name]["reason"]
    assert metrics["mia_min_k_auc"]["value"] is not None
    # the same model against its own report: identical distributions, so FQ = 1 and privleak = 0
    with pytest.warns(UserWarning, match="compares the model with itself"):
        again = run(str(tiny_checkpoint), data_dir, limit=6, reference=str(tmp_path / "reference"))
    metrics = again.tasks[TASK]["metrics"]
    assert metrics["forget_quality"]["value"] == pytest.approx(1.0)
    assert metrics["privleak"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["forget_quality"]["n"] == 6
    # a reference computed on other items is refused, not compared
    with pytest.warns(UserWarning, match="same sha256"):
        other = run(str(tiny_checkpoint), data_dir, limit=6, reference=str(tmp_path / "reference"),
                    extra_options={"ds_size": 4})
    refused = other.tasks[TASK]["metrics"]["forget_quality"]
    assert refused["value"] is None and "other items" in refused["reason"]


def test_ds_size_and_prompt_template(tiny_checkpoint, data_dir):
    legacy = {"ds_size": "3", "prompt_template": "[INST] {question} [/INST]"}  # strings, as from --task-args
    report = run(str(tiny_checkpoint), data_dir, extra_options=legacy)
    task = report.tasks[TASK]
    assert task["info"]["n"] == {"forget": 3, "retain": 3, "real_authors": 3, "world_facts": 3, "holdout": 20,
                                 "mia_forget": 20}
    first = build_benchmark(PEOPLE, 3)["forget01_perturbed"][0]["question"]
    assert task["info"]["prompt_example"] == f"[INST] {first} [/INST]"
    assert task["config"]["ds_size"] == 3
    with pytest.raises(ValueError, match="question"):
        TofuTask(prompt_template="no placeholder")
    with pytest.raises(ValueError, match="ds_size"):
        TofuTask(ds_size="many")


def test_missing_local_file_names_the_dataset(tiny_checkpoint, tmp_path):
    from mu_eval.data import DataError

    with pytest.raises(DataError, match="forget01_perturbed"):
        run(str(tiny_checkpoint), tmp_path, limit=2)


def test_unlearning_data_reads_the_training_configs(data_dir):
    from mu_eval.data import load_rows
    from mu_eval.task import TaskContext

    task = get_registry().task(TASK)
    ctx = TaskContext(load=lambda spec: load_rows(spec, data_dir), chat=lambda q: f"Q: {q}\nA: ",
                      uses_chat_template=False, limit=2)
    data = task.unlearning_data(ctx)
    benchmark = build_benchmark(PEOPLE, 3)
    assert len(data.forget) == len(benchmark["forget01"]) == 20  # all rows: --limit is for evaluation only
    assert len(data.retain) == len(benchmark["retain99"])
    assert len(data.holdout) == len(benchmark["holdout01"])
    perturbed = {row["question"]: tuple(row["perturbed_answer"]) for row in benchmark["forget01_perturbed"]}
    first = benchmark["forget01"][0]
    assert len(perturbed[first["question"]]) == 5
    assert data.forget[0] == mu_eval.TextExample(f"Q: {first['question']}\nA: ", first["answer"],
                                                 perturbed[first["question"]])
    assert all(example.alternates and example.answer not in example.alternates for example in data.forget)
    assert not any(example.alternates for example in data.retain + data.holdout)
    forget_questions = {e.prompt for e in data.forget}
    assert forget_questions.isdisjoint(e.prompt for e in data.retain)


def test_declared_forget_metrics_are_reported_metrics(tiny_checkpoint, data_dir):
    """Attacks track `forget_metrics`; a name the task does not report would silently track nothing."""
    from mu_eval.tasks.tofu.task import TofuTask

    report = run(tiny_checkpoint, data_dir, limit=3)
    reported = set(report.tasks[TASK]["metrics"])
    assert set(TofuTask.forget_metrics) <= reported
    assert "retain_prob" not in TofuTask.forget_metrics
