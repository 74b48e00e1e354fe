"""A third-party method distribution, pip-installed for real and run by the `mu-eval` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mu_eval

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "mu-eval-example-method"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(PLUGIN)],
        check=True, capture_output=True, text=True,
    )
    assert list(target.glob("mu_eval_example_method-*.dist-info"))
    return target


def run_cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "mu_eval.cli", *args], env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_installed_plugin_method_runs_from_the_cli(installed, trained_checkpoint, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    from mu_eval_example_method import FactsTask

    baseline = mu_eval.evaluate(str(trained_checkpoint), [FactsTask()], use_cache=False, progress=False)
    result = run_cli(
        installed, "--model", str(trained_checkpoint), "--tasks", "example_method_facts",
        "--method", "example_bounded_ascent", "--method-args", "steps=15,lr=2e-3",
        "--output-path", str(tmp_path), "--quiet", "--no-cache",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(next(tmp_path.glob("*.json")).read_text())
    section = report["method"]
    assert section["name"] == "example_bounded_ascent" and section["plugin"] == "example_method"
    assert section["config"]["options"] == {"steps": 15, "lr": 2e-3, "batch_size": 4, "ceiling": 20.0, "seed": 1234}
    assert section["data"]["forget"] == 2 and section["data"]["retain"] == 4 and section["wall_time_s"] > 0
    before = baseline.metric("example_method_facts", "forget_probability")
    after = report["tasks"]["example_method_facts"]["metrics"]["forget_probability"]["value"]
    assert after < 0.5 * before, (before, after)


@pytest.mark.slow
def test_installed_plugin_rejects_unknown_options(installed, trained_checkpoint):
    result = run_cli(
        installed, "--model", str(trained_checkpoint), "--tasks", "example_method_facts",
        "--method", "example_bounded_ascent", "--method-args", "ceil=3",
    )
    assert result.returncode == 2
    assert "no option 'ceil' (did you mean 'ceiling'?)" in result.stderr
    assert "valid options: steps, lr, batch_size, ceiling, seed" in result.stderr
