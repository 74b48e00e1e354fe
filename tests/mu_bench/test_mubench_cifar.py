"""CIFAR-100 end to end through `mu-eval --backend classifier`, every metric recomputed independently."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from mubench_helpers import CIFAR_DF, cifar_rows
from scipy.spatial.distance import jensenshannon

from mu_eval.cli import main
from mu_eval.tasks.mu_bench import metrics


def run_cli(model, cifar_data, out, *extra: str, task_args: str = "ratio=6,kg_draws=50") -> dict:
    argv = ["--model", str(model), "--backend", "classifier", "--tasks", "mubench_cifar100",
            "--data-dir", str(cifar_data["data"]), "--task-args", f"df_file={cifar_data['df_file']},{task_args}",
            "--output-path", str(out), "--quiet", "--seed", "3", *extra]
    assert main(argv) == 0
    return json.loads((out / "report.json").read_text())


def direct_logits(model_dir, rows, random_seed=None) -> np.ndarray:
    """Logits computed without the harness: the checkpoint (or a seeded random-init twin) and its processor."""
    from transformers import ViTForImageClassification, ViTImageProcessor

    model = ViTForImageClassification.from_pretrained(model_dir).eval()
    if random_seed is not None:
        torch.manual_seed(random_seed)
        model = ViTForImageClassification._from_config(model.config).eval()
    pixels = ViTImageProcessor.from_pretrained(model_dir)([r["img"] for r in rows], return_tensors="pt")
    with torch.no_grad():
        return model(**pixels).logits.double().numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    exps = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exps / exps.sum(axis=1, keepdims=True)


def test_cifar100_metrics_match_an_independent_computation(random_vit, cifar_data, tmp_path):
    report = run_cli(random_vit, cifar_data, tmp_path, "--batch-size", "4")
    task = report["tasks"]["mubench_cifar100"]
    got = {name: value["value"] for name, value in task["metrics"].items()}

    train, test = cifar_rows(0, 24), cifar_rows(1000, 10)
    forget_idx = CIFAR_DF[:6]  # ratio 6 of a 10-line file
    retain_idx = [i for i in range(24) if i not in forget_idx]
    assert task["items"]["forget_index"] == forget_idx and task["items"]["retain_index"] == retain_idx

    sets = {"test": test, "forget": [train[i] for i in forget_idx], "retain": [train[i] for i in retain_idx]}
    probs, correct, conf = {}, {}, {}
    for name, rows in sets.items():
        labels = np.array([r["fine_label"] for r in rows])
        probs[name] = softmax(direct_logits(random_vit, rows))
        correct[name] = (probs[name].argmax(1) == labels).astype(int)
        conf[name] = probs[name][np.arange(len(rows)), labels]
        assert got[f"{name}_accuracy"] == pytest.approx(correct[name].mean())
        assert task["items"][f"{name}_confidence"] == pytest.approx(conf[name], abs=1e-6)

    mia, _ = metrics.mia_efficacy(conf["retain"], conf["test"], conf["forget"], seed=3)
    assert got["mia_efficacy"] == pytest.approx(mia)
    assert got["knowledge_gap"] == pytest.approx(metrics.knowledge_gap(correct["forget"], correct["retain"], 3, 50))
    random_probs = softmax(direct_logits(random_vit, sets["forget"], random_seed=0))
    zrf = 1 - np.mean([jensenshannon(p, q) ** 2 for p, q in zip(probs["forget"], random_probs)])
    assert got["zrf"] == pytest.approx(zrf, abs=1e-6)

    assert got["selection_df_term"] == pytest.approx(abs(correct["forget"].mean() - 0.01))
    assert got["selection_hm"] is None and "original model" in task["metrics"]["selection_hm"]["reason"]
    assert task["metrics"]["forget_accuracy"]["higher_is_better"] is False


def test_selection_score_from_the_original_models_report(random_vit, cifar_data, tmp_path):
    original = run_cli(random_vit, cifar_data, tmp_path / "orig")
    orig_acc = original["tasks"]["mubench_cifar100"]["metrics"]["test_accuracy"]["value"]
    with pytest.warns(UserWarning, match="has the evaluated model's weights"):  # MU-Bench's own model as reference
        report = run_cli(random_vit, cifar_data, tmp_path / "again", "--reference", str(tmp_path / "orig"))
    got = {k: v["value"] for k, v in report["tasks"]["mubench_cifar100"]["metrics"].items()}
    dt = 1 - abs(got["test_accuracy"] - orig_acc)
    df = abs(got["forget_accuracy"] - 0.01)
    hm = 2 * dt * df / (dt + df) if dt + df else 0.0
    assert got["selection_dt_term"] == pytest.approx(dt) and got["selection_hm"] == pytest.approx(hm)
    assert got["overall"] == pytest.approx((hm + got["knowledge_gap"]) / 3)
    explicit = run_cli(random_vit, cifar_data, tmp_path / "explicit", task_args="ratio=6,orig_test_acc=0.75,zrf=false")
    metrics_ = explicit["tasks"]["mubench_cifar100"]["metrics"]
    assert metrics_["selection_dt_term"]["value"] == pytest.approx(1 - abs(got["test_accuracy"] - 0.75))
    assert "zrf" not in metrics_


def test_unlearning_method_runs_from_the_command_line(trained_vit, cifar_data, tmp_path):
    before = run_cli(trained_vit, cifar_data, tmp_path / "before")
    assert before["tasks"]["mubench_cifar100"]["metrics"]["forget_accuracy"]["value"] == 1.0
    after = run_cli(trained_vit, cifar_data, tmp_path / "after", "--method", "random_label",
                    "--method-args", "epochs=6,batch_size=8,lr=0.05,progress=false",
                    "--save-model", str(tmp_path / "unlearned"))
    assert after["method"]["name"] == "random_label"
    assert after["method"]["data"]["forget"] == 6 and after["method"]["data"]["retain"] == 18
    assert after["tasks"]["mubench_cifar100"]["metrics"]["forget_accuracy"]["value"] <= 0.5
    assert (tmp_path / "unlearned" / "config.json").is_file()
    reloaded = run_cli(tmp_path / "unlearned", cifar_data, tmp_path / "reloaded")
    assert reloaded["tasks"]["mubench_cifar100"]["items"]["forget_correct"] == \
        after["tasks"]["mubench_cifar100"]["items"]["forget_correct"]
