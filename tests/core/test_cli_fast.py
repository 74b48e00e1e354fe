"""The fast in-loop settings from the command line: --subset-seed and --scoring-only."""

from __future__ import annotations

import mu_eval
from mu_eval.cli import main

TASK = "synthetic_forget10"


def test_subset_seed_and_scoring_only_reach_the_report(tiny_checkpoint, tmp_path):
    arguments = ["--model", str(tiny_checkpoint), "--tasks", TASK, "--task-args", "people=10,mia_sets=evaluated",
                 "--limit", "3", "--subset-seed", "5", "--scoring-only", "--device", "cpu", "--quiet"]
    assert main([*arguments, "-o", str(tmp_path / "a")]) == 0
    report = mu_eval.load_report(tmp_path / "a")
    assert report.data["config"]["subset"] == {"items_per_set": 3, "chosen": "seeded random", "seed": 5}
    assert report.data["config"]["generation"]["generate"] is False
    assert "generate" not in report.data["engine"]["by_kind"]
    assert report.tasks[TASK]["metrics"]["forget_rougeL_recall"]["value"] is None
    # the same items as the API chooses with the same seed and limit
    api = mu_eval.evaluate(str(tiny_checkpoint), [TASK], task_options={TASK: {"people": 10, "mia_sets": "evaluated"}},
                           limit=3, subset_seed=5, generate=False, device="cpu", progress=False)
    assert api.tasks[TASK]["info"]["forget_fingerprint"] == report.tasks[TASK]["info"]["forget_fingerprint"]


def test_subset_seed_without_limit_is_one_line_exit_2(tiny_checkpoint, capsys):
    status = main(["--model", str(tiny_checkpoint), "--tasks", TASK, "--subset-seed", "5"])
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert error == "mu-eval: error: --subset-seed chooses --limit items of each set: give --limit too"
