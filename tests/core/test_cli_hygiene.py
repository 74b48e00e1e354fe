"""The command's manners: --version, `list --help`, a closed pipe, --quiet, strict options, reports kept."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mu_eval.cli import main

TESTS = Path(__file__).resolve().parents[1]


def registered_task() -> str:
    from support import register_support_task

    return register_support_task()


def cli_process(args: list[str], **popen) -> subprocess.Popen:
    """The real command in a fresh process, with the test task registered as a plugin would."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import support; support.register_support_task(); "
            "from mu_eval.cli import main; sys.exit(main(sys.argv[2:]))")
    return subprocess.Popen([sys.executable, "-c", code, str(TESTS), *args], text=True, **popen)


def test_version_is_the_installed_distribution(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mu-eval {importlib.metadata.version('mu-eval')}"


def test_list_help_names_every_kind(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["list", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert all(kind in out for kind in ("tasks", "methods", "attacks", "metrics", "backends", "plugins"))


def test_a_closed_pipe_ends_quietly():
    """`mu-eval list tasks | head`: the reader is gone before we write; no traceback, status 141 as for cat."""
    process = cli_process(["list", "tasks"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    error = process.stderr.read()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in error and "BrokenPipe" not in error and "Exception ignored" not in error


def test_quiet_silences_the_libraries_loading_messages(tiny_checkpoint, capsys):
    args = ["--model", str(tiny_checkpoint), "--tasks", registered_task(), "--limit", "1", "--no-cache"]
    assert main(args) == 0
    if "Loading weights" not in capsys.readouterr().err:
        pytest.skip("not applicable here: this transformers version shows no loading bar for a small checkpoint")
    # transformers' bar shows without --quiet: the check below bites
    assert main([*args, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "probability" in captured.out
    assert "Loading weights" not in captured.err and "it/s" not in captured.err
    assert main(args) == 0
    assert "Loading weights" in capsys.readouterr().err  # --quiet held for its own run only


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model-args", "dtpye=bfloat16"], "(--model-args) has no option 'dtpye' (did you mean 'dtype'?)"),
        (["--tasks", "synthetic_forget01", "--task-args", "peple=60"], "no option 'peple' (did you mean 'people'?)"),
        (["--method", "neggrad", "--method-args", "epoch=1"], "no option 'epoch' (did you mean 'epochs'?)"),
        (["--attacks", "mia", "--attack-args", "scroes=min_k"], "no option 'scroes' (did you mean 'scores'?)"),
        (["--method", "neggrad", "--protocol", "sequential", "--protocol-args", "flods=2"],
         "no option 'flods' (did you mean 'folds'?)"),
    ],
    ids=["model", "task", "method", "attack", "protocol"],
)
def test_a_typo_in_any_option_kind_exits_2_naming_the_closest_key(tiny_checkpoint, tmp_path, args, message, capsys):
    tasks = [] if "--tasks" in args else ["--tasks", registered_task()]
    status = main(["--model", str(tiny_checkpoint), *tasks, *args, "--output-path", str(tmp_path), "--quiet"])
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert message in error and len(error.splitlines()) == 1 and "Traceback" not in error
    assert not (tmp_path / "report.json").exists()  # nothing ran with the default instead


def test_a_second_run_keeps_the_first_report_under_its_creation_time(tiny_checkpoint, tmp_path, capsys):
    task = registered_task()
    common = ["--model", str(tiny_checkpoint), "--tasks", task, "--output-path", str(tmp_path), "--quiet",
              "--log-samples"]
    assert main([*common, "--limit", "2"]) == 0
    first = json.loads((tmp_path / "report.json").read_text())
    assert main([*common, "--limit", "3"]) == 0
    stamp = first["created"][:19].replace(":", "-")
    assert f"the earlier report there is kept as {tmp_path / f'report_{stamp}.json'}" in capsys.readouterr().out
    assert main([*common, "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert f"report written to {tmp_path / 'report.json'}" in out and out.count("is kept as") == 1
    assert json.loads((tmp_path / "report.json").read_text())["config"]["limit"] == 1  # the newest run
    kept = json.loads((tmp_path / f"report_{stamp}.json").read_text())
    assert kept == first
    assert len((tmp_path / f"samples_{task}_{stamp}.jsonl").read_text().splitlines()) == 2
    limits = sorted(json.loads(path.read_text())["config"]["limit"] for path in tmp_path.glob("report*.json"))
    assert limits == [1, 2, 3]  # three runs, three reports
    samples = sorted(len(path.read_text().splitlines()) for path in tmp_path.glob("samples_*.jsonl"))
    assert samples == [1, 2, 3]
