"""Attacks through the `mu-eval` command line (in-process, with the test tasks registered)."""

from __future__ import annotations

import mu_eval
from mu_eval.cli import main

ATTACKS = ("mia", "relearn", "quantization", "ununlearning", "reasoning", "spectral_detuning", "many_shot")


def test_cli_runs_two_attacks_with_shared_arguments(registered_tasks, trained_checkpoint, tmp_path, capsys):
    code = main([
        "--model", str(trained_checkpoint), "--tasks", "attack_test_qa", "--attacks", "mia,quantization",
        "--attack-args", "k=0.3,scores=loss;min_k;gradnorm,modes=8bit,method=simulate",
        "--output-path", str(tmp_path), "--device", "cpu", "--no-cache", "--quiet",
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "gradient norms" not in captured.err  # --quiet reaches the attacks
    attacks = mu_eval.load_report(tmp_path).data["attacks"]
    mia = attacks["mia"]
    assert mia["k"] == 0.3 and mia["scores"] == ["loss", "min_k", "gradnorm"]
    assert set(mia["tasks"]["attack_test_qa"]["scores"]) == {"loss", "min_k", "gradnorm"}
    assert mia["tasks"]["attack_test_qa"]["scores"]["loss"]["auc"] > 0.5
    assert list(attacks["quantization"]["modes"]) == ["8bit"]
    row = attacks["quantization"]["modes"]["8bit"]["tasks"]["attack_test_qa"]["metrics"]["forget_probability"]
    assert row["delta"] is not None


def test_cli_rejects_unknown_attack_options(registered_tasks, trained_checkpoint, capsys):
    code = main(["--model", str(trained_checkpoint), "--tasks", "attack_test_qa", "--attacks", "mia",
                 "--attack-args", "bogus=1", "--device", "cpu", "--quiet"])
    error = capsys.readouterr().err
    assert code == 2
    assert "attack 'mia' has no option 'bogus'; valid options: " in error and "Traceback" not in error


def test_cli_reports_a_missing_requirement_in_one_line(registered_tasks, trained_checkpoint, capsys):
    code = main(["--model", str(trained_checkpoint), "--tasks", "attack_test_nodata", "--attacks", "relearn",
                 "--device", "cpu", "--quiet", "--no-cache"])
    error = capsys.readouterr().err
    assert code == 2 and "needs forget examples" in error and "Traceback" not in error


def test_list_attacks_shows_the_builtin_attacks(capsys):
    assert main(["list", "attacks"]) == 0
    output = capsys.readouterr().out
    assert all(name in output for name in ATTACKS)
