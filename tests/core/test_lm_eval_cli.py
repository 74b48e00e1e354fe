"""lm-evaluation-harness spellings on the `mu-eval` command: the same evaluation, or a one-line error."""

from __future__ import annotations

import argparse
import json
import math

import pytest

from mu_eval.cli import main
from mu_eval.cli_lm_eval import expand_tasks, lm_eval_task_args
from mu_eval.plugins import get_registry


def registered_task() -> str:
    from support import register_support_task

    return register_support_task()


def comparable(path) -> dict:
    """A report without what differs between two runs of one evaluation (time, wall-clock, the output)."""
    data = json.loads(path.read_text())
    for key in ("created", "timings"):
        data.pop(key)
    return data


def test_lm_eval_spellings_run_the_same_evaluation(tiny_checkpoint, tmp_path, capsys):
    common = ["--limit", "2", "--no-cache", "--quiet", "--seed", "7"]
    ours = ["--model", str(tiny_checkpoint), "--tasks", "synthetic_forget01", "--output-path", str(tmp_path / "a"),
            "--batch-size", "3", "--task-args", "max_new_tokens=5", "--log-samples",
            "--model-args", "dtype=float32,trust_remote_code=true"]
    theirs = ["--model", "hf", "--model_args", f"pretrained={tiny_checkpoint},dtype=float32",
              "-t", "synthetic_forget0[1]", "-o", str(tmp_path / "b"), "--batch_size", "3",
              "--gen_kwargs", "max_gen_toks=5,do_sample=false", "--log_samples", "--apply_chat_template",
              "--trust_remote_code"]
    assert main([*ours, *common]) == 0
    assert main([*theirs, *common]) == 0
    capsys.readouterr()
    a, b = comparable(tmp_path / "a" / "report.json"), comparable(tmp_path / "b" / "report.json")
    assert a["config"]["task_options"] == {"synthetic_forget01": {"max_new_tokens": "5"}}  # the flag reached it
    assert a["tasks"]["synthetic_forget01"]["config"] == b["tasks"]["synthetic_forget01"]["config"]
    assert a == b
    samples = [(tmp_path / run / "samples_synthetic_forget01.jsonl").read_text() for run in "ab"]
    assert samples[0] == samples[1] and samples[0]


@pytest.mark.parametrize(("limit", "share"), [("0.25", 0.25), ("0.5", 0.5), ("3.0", 3)])
def test_a_fractional_limit_takes_that_share_of_each_set_rounded_up(tiny_checkpoint, tmp_path, limit, share, capsys):
    from support import FACTS

    task = registered_task()
    assert main(["--model", str(tiny_checkpoint), "-t", task, "-o", str(tmp_path), "--limit", limit, "--quiet"]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    expected = math.ceil(len(FACTS) * share) if share < 1 else share
    assert data["tasks"][task]["metrics"]["probability"]["n"] == expected
    assert data["config"]["limit"] == share


def test_batch_size_auto_n_is_auto_with_a_note(tiny_checkpoint, tmp_path, capsys):
    task = registered_task()
    assert main(["--model", str(tiny_checkpoint), "-t", task, "-o", str(tmp_path), "--limit", "2",
                 "--batch_size", "auto:4", "--quiet"]) == 0
    assert "auto:4 is read as auto" in capsys.readouterr().err
    assert json.loads((tmp_path / "report.json").read_text())["config"]["batch_size"] == "auto"


def test_chat_template_flags(tiny_checkpoint, tmp_path, capsys):
    task = registered_task()
    base = ["--model", str(tiny_checkpoint), "-t", task, "--limit", "1", "--quiet"]
    assert main([*base, "-o", str(tmp_path / "off"), "--no_chat_template"]) == 0
    assert main([*base, "-o", str(tmp_path / "on"), "--apply_chat_template"]) == 0
    used = {run: json.loads((tmp_path / run / "report.json").read_text())["config"]["use_chat_template"]
            for run in ("off", "on")}
    assert used == {"off": False, "on": True}
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "--apply_chat_template", "--no-chat-template"])
    assert exit_info.value.code == 2


def test_tasks_list_lists_tasks_without_a_model(capsys):
    assert main(["--tasks", "list"]) == 0
    names = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert names == get_registry().names("tasks") and "tofu_forget10" in names


def test_wildcards_expand_against_the_registered_tasks():
    registry = get_registry()
    assert expand_tasks(["synthetic_forget0?", "wmdp_bio"], registry) == [
        "synthetic_forget01", "synthetic_forget05", "wmdp_bio"]
    every = expand_tasks(["tofu_*", "tofu_forget05"], registry)
    assert every == ["tofu_forget01", "tofu_forget05", "tofu_forget10"]  # in order, once each


def test_shots_and_generation_length_go_to_the_tasks_that_have_them():
    args = argparse.Namespace(tasks=["mmlu", "synthetic_forget01", "wmdp_bio"], num_fewshot=3,
                              gen_kwargs="max_new_tokens=7")
    routed = lm_eval_task_args(args, {"people": "6"}, get_registry())
    assert routed == {"people": "6", "mmlu.num_fewshot": "3", "synthetic_forget01.max_new_tokens": "7"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "hf", "-t", "synthetic_forget01"], "--model hf is lm-eval's spelling"),
        (["-t", "synthetic_forget01", "--num_fewshot", "5"], "no task of this run (synthetic_forget01) takes few-shot"),
        (["-t", "synthetic_forget01", "--gen_kwargs", "temperature=0.7"], "decodes greedily"),
        (["-t", "synthetic_forget01", "--gen_kwargs", "max_gen_tok=5"], "did you mean 'max_gen_toks'?"),
        (["-t", "synthetic_forget01", "--gen_kwargs", "max_gen_toks=5", "--task-args", "max_new_tokens=6"],
         "give it once"),
        (["-t", "synthetic_*", "--model_args", "pretrained=elsewhere"], "goes with lm-eval's --model hf|vllm"),
        (["-t", "synthtic_*"], "matches no task"),
        (["-t", "synthetic_forget01", "--trust_remote_code", "--model_args", "trust_remote_code=false"],
         "--trust_remote_code contradicts"),
        (["-t", "synthetic_forget01", "--apply_chat_template", "chatml"], "named chat template is not supported"),
    ],
)
def test_lm_eval_spellings_without_a_meaning_here_are_one_line_errors(tiny_checkpoint, args, message, capsys):
    if "--model" not in args:
        args = ["--model", str(tiny_checkpoint), *args]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1, error
