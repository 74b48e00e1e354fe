"""docs/python-api.md: its runnable examples run as written, and it documents every argument of evaluate."""

from __future__ import annotations

import inspect
import json
import re
import tempfile
from pathlib import Path

import pytest

import mu_eval

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def examples() -> dict[str, str]:
    """The doc's code blocks whose first line is `# runnable: <name>`, by name."""
    blocks = re.findall(r"```python\n# runnable: ([\w ]+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    return {name: code for name, code in blocks}


def run_example(name: str, tmp_path, monkeypatch) -> dict:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the examples' mkdtemp() folders land here
    namespace: dict = {"__name__": "__main__"}
    exec(compile(examples()[name], f"{DOC.name}:{name}", "exec"), namespace)
    return namespace


def test_the_doc_has_both_examples():
    assert set(examples()) == {"plain loop", "trainer"}


def test_plain_loop_example(tmp_path, monkeypatch, capsys):
    namespace = run_example("plain loop", tmp_path, monkeypatch)
    evaluator, output = namespace["evaluator"], Path(namespace["output"])
    assert [checkpoint.step for checkpoint in evaluator.history] == [1, 2, 3]
    qualities = [c.metrics[f"{namespace['task']}/forget_quality"] for c in evaluator.history]
    assert all(q is not None for q in qualities)  # defined on the subset, against the reference evaluated once
    assert evaluator.best.step == max((1, 2, 3), key=lambda s: (qualities[s - 1], -s))
    assert json.loads((output / "best.json").read_text())["best"]["step"] == evaluator.best.step
    assert (output / "reference" / "report.json").is_file()
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed[:3]] == ["1", "2", "3"]
    assert printed[3].startswith(f"best step: {evaluator.best.step}")


def test_trainer_example(tmp_path, monkeypatch):
    namespace = run_example("trainer", tmp_path, monkeypatch)
    trainer, task = namespace["trainer"], namespace["task"]
    steps = [entry["step"] for entry in trainer.state.log_history if f"eval/{task}/forget_prob" in entry]
    assert steps == [2, 4]
    best = namespace["callback"].best
    assert trainer.state.best_model_checkpoint == str(Path(namespace["args"].output_dir) / f"checkpoint-{best.step}")


def test_every_evaluate_argument_is_in_the_table():
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## `mu_eval.evaluate"):text.index("## Calling it")]
    documented = {name for row in re.findall(r"^\| (`[^|]+)\|", table, re.MULTILINE)
                  for name in re.findall(r"`(\w+)`", row)}
    missing = set(inspect.signature(mu_eval.evaluate).parameters) - documented
    assert not missing, f"docs/python-api.md does not document: {sorted(missing)}"


@pytest.mark.parametrize("module", ["mu_eval.in_loop", "mu_eval.integrations.transformers"])
def test_the_doc_names_the_in_loop_modules(module):
    assert module in DOC.read_text(encoding="utf-8")
