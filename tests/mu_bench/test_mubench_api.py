"""Library use (in-memory models), KLoM over reports, and the errors a user sees."""

from __future__ import annotations

import json

import mubench_helpers as h
import numpy as np
import pytest

import mu_eval
from mu_eval.cli import main
from mu_eval.tasks.mu_bench.klom import klom_from_reports, klom_scores


def report_with(indices, margins) -> dict:
    items = {}
    for group in ("forget", "retain", "test"):
        items[f"{group}_index"], items[f"{group}_margin"] = list(indices), list(margins)
    return {"tasks": {"mubench_cifar100": {"items": items}}}


def test_klom_from_reports_aligns_points_by_row_index():
    oracles = [report_with([5, 7, 9], [1.0, 2.0, 3.0]), report_with([9, 7, 5], [3.5, 2.5, 1.5])]
    unlearned = [report_with([7, 5], [9.0, 1.0]), report_with([5, 7], [1.5, 8.0])]
    summary = klom_from_reports(oracles, unlearned, "mubench_cifar100", groups=("forget",))
    expected = klom_scores(np.array([[1.0, 2.0], [1.5, 2.5]]), np.array([[1.0, 9.0], [1.5, 8.0]]))
    assert summary["forget"]["n"] == 2 and summary["forget"]["mean"] == pytest.approx(expected.mean())
    assert expected[0] == pytest.approx(0.0) and expected[1] > 1
    with pytest.raises(ValueError):
        klom_from_reports([], unlearned, "mubench_cifar100")


def test_in_memory_classifier_matches_the_checkpoint_run(random_vit, cifar_data, tmp_path):
    from transformers import ViTForImageClassification, ViTImageProcessor

    options = {"mubench_cifar100": {"df_file": str(cifar_data["df_file"]), "ratio": 6, "zrf": False}}
    model = ViTForImageClassification.from_pretrained(random_vit)
    processor = ViTImageProcessor.from_pretrained(random_vit)
    in_memory = mu_eval.evaluate((model, processor), ["mubench_cifar100"], backend="classifier",
                                 task_options=options, data_dir=cifar_data["data"], progress=False)
    from_path = mu_eval.evaluate(str(random_vit), ["mubench_cifar100"], backend="classifier", task_options=options,
                                 data_dir=cifar_data["data"], progress=False, use_cache=False)
    a, b = in_memory.tasks["mubench_cifar100"]["items"], from_path.tasks["mubench_cifar100"]["items"]
    assert a["forget_confidence"] == pytest.approx(b["forget_confidence"], abs=1e-6)
    assert in_memory.data["model"]["modality"] == "image"


def test_a_text_model_on_an_image_task_is_a_one_line_error(cifar_data, tmp_path, capsys):
    model_dir = h.bert(tmp_path / "bert", 100, ["some words here"])
    argv = ["--model", str(model_dir), "--backend", "classifier", "--tasks", "mubench_cifar100", "--data-dir",
            str(cifar_data["data"]), "--task-args", f"df_file={cifar_data['df_file']}", "--quiet", "--no-cache"]
    assert main(argv) == 2
    assert "text classifier but the task sends image inputs" in capsys.readouterr().err


def test_a_missing_deletion_file_names_the_option(random_vit, cifar_data, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MU_EVAL_DATA_DIR", raising=False)
    argv = ["--model", str(random_vit), "--backend", "classifier", "--tasks", "mubench_cifar100", "--data-dir",
            str(cifar_data["data"]), "--quiet", "--no-cache", "--output-path", str(tmp_path)]
    assert main(argv) == 2
    assert "df_file=PATH" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


def test_answers_are_cached_by_content(random_vit, cifar_data, tmp_path):
    argv = ["--model", str(random_vit), "--backend", "classifier", "--tasks", "mubench_cifar100", "--data-dir",
            str(cifar_data["data"]), "--task-args", f"df_file={cifar_data['df_file']},zrf=false", "--quiet",
            "--cache-dir", str(tmp_path / "cache")]
    assert main([*argv, "--output-path", str(tmp_path / "first")]) == 0
    assert main([*argv, "--output-path", str(tmp_path / "second")]) == 0
    first, second = (json.loads((tmp_path / n / "report.json").read_text()) for n in ("first", "second"))
    assert second["engine"]["from_cache"] == second["engine"]["distinct"] > 0
    assert second["tasks"]["mubench_cifar100"]["items"] == first["tasks"]["mubench_cifar100"]["items"]
