"""RWKU end to end on a tiny chat model from RWKU-schema files: per-target and batch runs, CLI, errors."""

import json

import pytest
import torch
from rouge import Rouge
from rwku_support import ADVERSARIAL_TYPES
from transformers import AutoModelForCausalLM, AutoTokenizer

import mu_eval
from mu_eval.cli import main as cli_main
from mu_eval.data import DataError


def read_samples(folder, task):
    with (folder / f"samples_{task}.jsonl").open() as handle:
        return [json.loads(line) for line in handle]


def mean(values):
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def rwku_run(rwku_checkpoint, rwku_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("rwku-report")
    report = mu_eval.evaluate(str(rwku_checkpoint), ["rwku"], data_dir=rwku_dir, output_path=out, log_samples=True,
                              task_options={"rwku": {"num_targets": 2}}, progress=False)
    return report.tasks["rwku"], read_samples(out, "rwku")


def test_per_target_forget_and_neighbour_with_type_breakdown(rwku_run, rwku_names):
    task, samples = rwku_run
    names = list(rwku_names)[:2]
    assert task["info"]["targets"] == names and task["info"]["mode"] == "target"
    probes = [s for s in samples if s["part"] in ("forget", "neighbor")]
    assert len(probes) == 2 * (2 + 2 + 9 + 1 + 1)
    for sample in probes:  # every recall recomputed with the `rouge` package itself
        assert sample["prediction"] == sample["prediction"].strip() and "\n" not in sample["prediction"]
        direct = Rouge().get_scores(sample["prediction"], sample["gold"])[0]["rouge-l"]["r"]
        assert sample["rougeL_recall"] == pytest.approx(direct)

    def expected(part, select):
        per_target = [mean([s["rougeL_recall"] for s in probes if s["unit"] == n and s["part"] == part and select(s)])
                      for n in names]
        return 100 * mean(per_target)

    metrics = task["metrics"]
    for level, short in ((1, "fb"), (2, "qa"), (3, "aa")):
        value = expected("forget", lambda s, lv=level: s["level"] == lv)
        assert metrics[f"forget_{short}"]["value"] == pytest.approx(value)
    assert metrics["forget_all"]["value"] == pytest.approx(expected("forget", lambda s: True))
    assert metrics["neighbor_all"]["value"] == pytest.approx(expected("neighbor", lambda s: True))
    for kind in ADVERSARIAL_TYPES:
        metric = metrics["forget_aa_" + kind.replace(" ", "_")]
        assert metric["n"] == 2 and metric["higher_is_better"] is False
        assert metric["value"] == pytest.approx(expected("forget", lambda s, k=kind: s["type"] == k))
    assert set(task["info"]["per_target"]) == set(names)


def test_mia_loss_is_mean_nll_times_100(rwku_run, rwku_checkpoint, rwku_names):
    task, _ = rwku_run
    model = AutoModelForCausalLM.from_pretrained(rwku_checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(rwku_checkpoint)
    name = list(rwku_names)[0]
    ids = tokenizer(rwku_names[name][0], return_tensors="pt").input_ids  # BOS + text, every token after BOS scored
    with torch.no_grad():
        nll = model(ids, labels=ids).loss.item()
    assert task["info"]["per_target"][name]["mia_fm"] == pytest.approx(100 * nll, rel=1e-4)
    assert task["metrics"]["mia_fm"]["n"] == 2 and task["metrics"]["mia_rm"]["n"] == 2


def test_utility_metrics_are_reported(rwku_run):
    task, samples = rwku_run
    metrics = task["metrics"]
    for name in ("utility_gen", "utility_rea", "utility_tru", "utility_fac", "utility_flu"):
        assert metrics[name]["n"] == 2 and metrics[name]["higher_is_better"] is True
        assert metrics[name]["value"] is not None
    for name in ("utility_gen", "utility_rea", "utility_tru", "utility_fac"):
        assert 0.0 <= metrics[name]["value"] <= 100.0
    reason = [s for s in samples if s["part"] == "reason"]
    assert metrics["utility_rea"]["value"] == pytest.approx(100 * mean([s["em"] for s in reason]))
    assert task["info"]["fluency_tokenizer"]


def test_batch_mode_and_cli(rwku_checkpoint, rwku_dir, tmp_path):
    code = cli_main(["--model", str(rwku_checkpoint), "--tasks", "rwku_batch", "--data-dir", str(rwku_dir),
                     "--task-args", "targets=1-3,parts=forget+neighbor", "--output-path", str(tmp_path),
                     "--log-samples", "--quiet"])
    assert code == 0
    task = mu_eval.load_report(tmp_path).tasks["rwku_batch"]
    samples = read_samples(tmp_path, "rwku_batch")
    assert task["info"]["mode"] == "batch" and len(task["info"]["targets"]) == 3
    forget = [s["rougeL_recall"] for s in samples if s["part"] == "forget"]
    assert task["metrics"]["forget_all"]["n"] == len(forget) == 3 * 13
    assert task["metrics"]["forget_all"]["value"] == pytest.approx(100 * mean(forget))


def test_missing_type_is_a_named_error(rwku_checkpoint, rwku_dir, tmp_path):
    for path in rwku_dir.iterdir():
        (tmp_path / path.name).write_text(path.read_text())
    rows = json.loads((tmp_path / "forget_level3.json").read_text())
    del rows[4]["type"]
    (tmp_path / "forget_level3.json").write_text(json.dumps(rows))
    with pytest.raises(DataError) as error:
        mu_eval.evaluate(str(rwku_checkpoint), ["rwku"], data_dir=tmp_path, progress=False,
                         task_options={"rwku": {"num_targets": 1, "parts": "forget"}})
    assert f"{tmp_path / 'forget_level3.json'}: row 4 lacks field 'type'" in str(error.value)


def test_batch_size_does_not_change_probes(rwku_checkpoint, rwku_dir, tmp_path):
    runs = []
    for size in (1, 9):
        folder = tmp_path / str(size)
        mu_eval.evaluate(str(rwku_checkpoint), ["rwku"], data_dir=rwku_dir, batch_size=size, output_path=folder,
                         task_options={"rwku": {"num_targets": 2, "parts": "forget+mia"}}, log_samples=True,
                         use_cache=False, progress=False)
        runs.append((mu_eval.load_report(folder).tasks["rwku"], read_samples(folder, "rwku")))
    (first, first_samples), (second, second_samples) = runs
    assert [s["prediction"] for s in first_samples] == [s["prediction"] for s in second_samples]
    assert first["items"]["mia_fm"] == pytest.approx(second["items"]["mia_fm"], abs=1e-5)
