"""Published logs as `--reference`: TOFU's own eval logs and open-unlearning's TOFU_EVAL.json, detected from
their files, give the published forget quality and privleak through the task's own comparison code."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score
from test_golden import EXPECTED_D, EXPECTED_FQ, REL_FQ, relatively_close

import mu_eval
from mu_eval.cli import main as cli_main
from mu_eval.references import ReferenceError, load_reference, resolve_references
from mu_eval.tasks.tofu import results as R

TASK = "tofu_forget10"


@pytest.fixture(scope="module")
def golden(benchmark_data):
    return benchmark_data / "tofu" / "golden-logs"


@pytest.fixture(scope="module")
def ou_logs(benchmark_data):
    folder = benchmark_data / "open-unlearning"
    return folder / "tofu_Llama-2-7b-chat-hf_full_forget10", folder / "tofu_Llama-2-7b-chat-hf_retain90"


def against(target: dict, reference: dict, task: str = TASK) -> dict:
    """The task's reference metrics for a target whose per-item values were read from published logs."""
    section = target["tasks"][task]
    items = {"forget_min_k": [], "holdout_min_k": [], **section["items"]}
    return R.reference_metrics(task, items, section["info"], resolve_references(reference))


def test_forget_quality_from_tofu_published_logs_equals_the_golden_value(golden):
    reference = load_reference(golden / "llama2-7b_retain90")
    target = load_reference(golden / "llama2-7b_full")
    assert list(reference["tasks"]) == [TASK]  # 300 forget items: forget10 as TOFU's code evaluated it
    assert reference["model"]["backend"] == "published-logs (tofu-eval-logs)"
    values = against(target, reference)
    assert relatively_close(values["forget_quality"].value, EXPECTED_FQ, REL_FQ)
    assert f"D={EXPECTED_D:.6f}" in values["forget_quality"].variant and values["forget_quality"].n == 300
    assert values["privleak"].value is None and "forget_min_k" in values["privleak"].reason
    # s, not the logs' truth_ratio (1/s): recomputed here from the raw fields
    log = json.loads((golden / "llama2-7b_full" / "eval_log_forget.json").read_text())
    first = math.exp(np.mean(log["average_perturb_loss"]["0"]) - log["avg_paraphrased_loss"]["0"])
    assert target["tasks"][TASK]["items"]["forget_truth_ratio_s"][0] == pytest.approx(first, rel=1e-12)
    assert target["tasks"][TASK]["items"]["forget_truth_ratio_s"][0] == pytest.approx(4.077743, rel=1e-6)
    # the forget log alone, named by its file, is the same reference
    alone = load_reference(golden / "llama2-7b_retain90" / "eval_log_forget.json")
    assert alone["tasks"][TASK]["items"]["forget_truth_ratio_s"] == reference["tasks"][TASK]["items"][
        "forget_truth_ratio_s"]


def test_open_unlearning_logs_give_its_published_forget_quality_and_privleak(ou_logs):
    full, retain = ou_logs
    target, reference = load_reference(full), load_reference(retain / "TOFU_EVAL.json")
    published = json.loads((full / "TOFU_EVAL.json").read_text())
    values = against(target, reference)
    # open-unlearning computed these from the same two files with its own code
    assert relatively_close(values["forget_quality"].value, published["forget_quality"]["agg_value"], 1e-9)
    assert values["privleak"].value == pytest.approx(published["privleak"]["agg_value"], abs=1e-6)
    assert values["mia_min_k_auc"].value == pytest.approx(published["mia_min_k"]["auc"], abs=1e-12)
    assert values["forget_quality"].n == 400 and values["mia_min_k_auc"].n == 800
    # conventions: truth ratio stored as 1/s, Min-K% as -mean(lowest log-probs)
    stored = published["forget_truth_ratio"]["value_by_index"]
    items = target["tasks"][TASK]["items"]
    assert items["forget_truth_ratio_s"][10] == pytest.approx(1 / stored["10"]["score"], rel=1e-12)
    assert items["forget_min_k"][3] == -published["mia_min_k"]["forget"]["value_by_index"]["3"]["score"]
    scores = [-v for v in items["forget_min_k"] + items["holdout_min_k"]]
    assert roc_auc_score([0] * 400 + [1] * 400, scores) == pytest.approx(values["mia_min_k_auc"].value, abs=1e-12)


def test_convert_reference_writes_a_report_that_serves_as_reference(golden, tmp_path, capsys):
    code = cli_main(["convert-reference", str(golden / "llama2-7b_retain90"), "--output-path", str(tmp_path)])
    assert code == 0
    assert "tofu_forget10: forget_prob 300" in capsys.readouterr().out
    converted = mu_eval.load_report(tmp_path)  # a valid schema-1 report
    values = against(load_reference(golden / "llama2-7b_full"), converted.data)
    assert relatively_close(values["forget_quality"].value, EXPECTED_FQ, REL_FQ)
    assert cli_main(["convert-reference", str(tmp_path / "nothing"), "--output-path", str(tmp_path)]) == 2
    assert "reference not found" in capsys.readouterr().err


def test_task_prefix_and_wrong_inputs(golden, tmp_path):
    named = load_reference(f"tofu_forget05={golden / 'llama2-7b_retain90'}")
    assert list(named["tasks"]) == ["tofu_forget05"]
    with pytest.raises(ReferenceError, match="match no TOFU split"):
        log = json.loads((golden / "llama2-7b_full" / "eval_log_forget.json").read_text())
        small = {field: {k: v for k, v in values.items() if int(k) < 7} for field, values in log.items()}
        (tmp_path / "eval_log_forget.json").write_text(json.dumps(small))
        load_reference(tmp_path)
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ReferenceError, match="not a mu-eval report, a TOFU evaluation log or an open-unlearning"):
        load_reference(tmp_path / "other.json")
    with pytest.raises(ReferenceError, match="retain log alone"):
        load_reference(golden / "llama2-7b_full" / "eval_log.json")


@pytest.fixture(scope="module")
def tofu_dir(tmp_path_factory):
    from mu_eval.tasks.synthetic_profiles.generator import write_benchmark

    directory = tmp_path_factory.mktemp("tofu-data-references")
    write_benchmark(directory, people=10, seed=3)
    return directory


def run(model, tofu_dir, tasks, **kwargs):
    options = {name: {"max_new_tokens": 3} for name in tasks}
    return mu_eval.evaluate(str(model), list(tasks), task_options=options, data_dir=tofu_dir, limit=8,
                            progress=False, use_cache=False, **kwargs)


def test_one_reference_per_task_and_the_same_model_warning(tiny_checkpoint, other_tiny_checkpoint, tofu_dir,
                                                           tmp_path):
    tasks = ("tofu_forget01", "tofu_forget05")
    run(other_tiny_checkpoint, tofu_dir, tasks, output_path=tmp_path / "other")
    run(tiny_checkpoint, tofu_dir, tasks, output_path=tmp_path / "self")
    other = mu_eval.load_report(tmp_path / "other")
    own = mu_eval.load_report(tmp_path / "self")
    # forget01 against the other model, forget05 against the model itself
    references = [f"tofu_forget01={tmp_path / 'other'}", f"tofu_forget05={tmp_path / 'self'}"]
    with pytest.warns(UserWarning, match="same sha256") as caught:
        report = run(tiny_checkpoint, tofu_dir, tasks, reference=references)
    assert len(caught) == 1 and str(tmp_path / "self") in str(caught[0].message)
    for task, reference in (("tofu_forget01", other), ("tofu_forget05", own)):
        expected = ks_2samp(report.tasks[task]["items"]["forget_truth_ratio_s"],
                            reference.tasks[task]["items"]["forget_truth_ratio_s"]).pvalue
        assert report.tasks[task]["metrics"]["forget_quality"]["value"] == pytest.approx(expected, rel=1e-12)
    assert report.tasks["tofu_forget05"]["metrics"]["forget_quality"]["value"] == pytest.approx(1.0)
    assert report.tasks["tofu_forget01"]["metrics"]["forget_quality"]["value"] < 1.0
    assert report["config"]["reference"] == references
    with pytest.raises(ReferenceError, match="two references give task 'tofu_forget01'"):
        run(tiny_checkpoint, tofu_dir, tasks, reference=[str(tmp_path / "other"), str(tmp_path / "self")])


def test_cli_takes_several_references_and_published_logs(tiny_checkpoint, tofu_dir, golden, tmp_path, capsys):
    base = ["--model", str(tiny_checkpoint), "--data-dir", str(tofu_dir), "--limit", "4", "--quiet",
            "--task-args", "max_new_tokens=2"]
    code = cli_main([*base, "--tasks", "tofu_forget10", "--reference", str(golden / "llama2-7b_retain90"),
                     "--output-path", str(tmp_path / "run")])
    assert code == 0
    metric = mu_eval.load_report(tmp_path / "run").tasks["tofu_forget10"]["metrics"]["forget_quality"]
    assert metric["value"] is None and "the reference has 300 items where this run has 4" in metric["reason"]
    code = cli_main([*base, "--tasks", "tofu_forget10", "--reference", str(tmp_path / "missing")])
    assert code == 2 and "reference not found" in capsys.readouterr().err
