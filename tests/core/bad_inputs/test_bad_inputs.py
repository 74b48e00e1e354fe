"""Every case of the bad-input corpus (bad_input_cases.py) through the real command line: exit status 2, one
line naming the problem, no traceback, nothing left in the output folder."""

from __future__ import annotations

import os
import shutil

import pytest
from bad_input_cases import CASES, Case, Env, argv

from mu_eval.cli import main
from mu_eval.tasks.synthetic_profiles.generator import write_benchmark

MINIMUM_CORPUS = 100


def test_the_corpus_has_at_least_100_cases():
    print(f"bad-input corpus: {len(CASES)} cases")
    assert len(CASES) >= MINIMUM_CORPUS
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def benchmark_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tofu-files")
    write_benchmark(directory, people=10, seed=3)
    return directory


def files_under(path):
    if not os.path.lexists(path):
        return []
    if not os.path.isdir(path):
        return [path]
    return [os.path.join(root, name) for root, _, names in os.walk(path) for name in names]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input_is_one_line_and_exit_2(case: Case, tiny_checkpoint, benchmark_files, tmp_path, capsys):
    if case.needs_permissions and os.geteuid() == 0:
        pytest.skip("not applicable here: the superuser writes into read-only folders")
    model = shutil.copytree(tiny_checkpoint, tmp_path / "model") if case.edits_model else tiny_checkpoint
    env = Env(model=model, data=shutil.copytree(benchmark_files, tmp_path / "data"), out=tmp_path / "out",
              cache=tmp_path / "cache", tmp=tmp_path)
    if case.setup is not None:
        case.setup(env)
    try:
        status = main(argv(case, env))
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2, (status, captured.err[-2000:])
    assert "Traceback" not in captured.err
    assert len(lines) == 1 and lines[0].startswith("mu-eval: error: "), captured.err[-2000:]
    assert any(wording.lower() in lines[0].lower() for wording in case.expect.split("|")), lines[0]
    assert files_under(env.out) == []
