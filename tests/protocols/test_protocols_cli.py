"""`mu-eval --protocol`: a full run to a validated report, the step table, and one-line usage errors."""

from __future__ import annotations

import json

import pytest
from protocols_support import ASCENT, FORGET_COUNT, ProtocolFactsTask, register_protocol_task
from support import FACTS

import mu_eval
from mu_eval.cli import main

ASCENT_ARGS = ",".join(f"{key}={value}" for key, value in ASCENT.items())


def test_cli_growing_run_writes_a_report_with_every_step(tiny_checkpoint, tmp_path, capsys):
    task = register_protocol_task()
    code = main([
        "--model", str(tiny_checkpoint), "--tasks", task, "--method", "grad_ascent", "--method-args", ASCENT_ARGS,
        "--protocol", "growing", "--protocol-args", f"folds={FORGET_COUNT}", "--output-path", str(tmp_path),
        "--log-samples", "--save-model", str(tmp_path / "unlearned"), "--quiet",
    ])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = mu_eval.load_report(tmp_path)  # validates
    steps = report["protocol"]["steps"]
    assert [s["forget_size"] for s in steps] == list(range(FORGET_COUNT + 1))
    assert [s["method"]["data"]["forget"] for s in steps[1:]] == list(range(1, FORGET_COUNT + 1))
    assert steps[-1]["folds"] == list(range(1, FORGET_COUNT + 1))
    assert report.tasks[task]["metrics"] == steps[-1]["tasks"][task]["metrics"]
    assert report["config"]["protocol_options"] == {"folds": FORGET_COUNT, "baseline": True}
    lines = out.splitlines()
    title = lines.index(next(line for line in lines if line.startswith("protocol growing")))
    assert len(lines) >= title + 2 + len(steps) and lines[title + 1].split()[:3] == ["step", "forget", "folds"]
    assert lines[title + 2 + FORGET_COUNT].split()[:3] == [str(FORGET_COUNT), str(FORGET_COUNT), "1+2+3+4+5"]
    assert "protocol growing" not in err, "--quiet turns the step bar off"
    # the saved model is the last step's (the growing protocol restores the original weights afterwards)
    assert report["method"]["saved_to"] == str(tmp_path / "unlearned")
    assert [s["method"]["saved_to"] for s in steps[1:-1]] == [None] * (FORGET_COUNT - 1)
    reloaded = mu_eval.evaluate(str(tmp_path / "unlearned"), [ProtocolFactsTask()], use_cache=False, progress=False)
    assert reloaded.tasks[task]["metrics"] == report.tasks[task]["metrics"]
    samples = [json.loads(line) for line in (tmp_path / f"samples_{task}.jsonl").read_text().splitlines()]
    assert len(samples) == len(FACTS), "one sample per fact, of the last step only"
    assert samples[0]["probability"] == pytest.approx(report.metric(task, "first_fact"))
    assert samples[0]["probability"] != pytest.approx(steps[0]["tasks"][task]["metrics"]["first_fact"]["value"])


def test_progress_bar_counts_the_steps(tiny_checkpoint, capsys):
    mu_eval.evaluate(str(tiny_checkpoint), [ProtocolFactsTask()], method="grad_ascent", method_options=ASCENT,
                     protocol="sequential", protocol_options={"folds": 2}, progress=True)
    err = capsys.readouterr().err
    assert "protocol sequential" in err and "3/3" in err, "baseline and two folds: three steps"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--protocol", "sequential"], "--protocol needs --method"),
        (["--method", "grad_ascent", "--protocol", "zigzag"], "unknown protocol 'zigzag'"),
        (["--method", "grad_ascent", "--protocol", "growing", "--protocol-args", "folds=0"], "must be at least 1"),
        (["--method", "grad_ascent", "--protocol", "growing", "--protocol-args", "fold=2"], "did you mean 'folds'"),
        (["--method", "grad_ascent", "--protocol-args", "folds=2"], "--protocol-args needs --protocol"),
    ],
)
def test_protocol_usage_errors_are_one_line(tiny_checkpoint, capsys, arguments, expected):
    code = main(["--model", str(tiny_checkpoint), "--tasks", register_protocol_task(), *arguments])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("mu-eval: error:")]
    assert code == 2 and len(errors) == 1 and expected in errors[0] and "Traceback" not in err
    assert "Loading weights" not in err, "protocol errors are found before the model is loaded"
