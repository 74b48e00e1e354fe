"""Many checkpoints: `mu-eval --model 'run/checkpoint-*'` writes one report per checkpoint (each that
checkpoint's own, as a run on it alone gives) and a summary, and reads the task data and the reference once."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

import mu_eval
import mu_eval.data
import mu_eval.references
from mu_eval.cli import main
from mu_eval.sweep import SweepError, expand_models, short_names
from mu_eval.tasks.synthetic_profiles.generator import write_benchmark
from mu_eval.tiny import build_model, build_tokenizer, save

TASK = "tofu_forget01"
STEPS = (5, 10, 100)  # in name order 10, 100, 5: the sweep must follow the numbers


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A training run's folder: three checkpoints of one tiny model, each a little further from the first."""
    from support import TRAINING_TEXTS

    root = tmp_path_factory.mktemp("run")
    tokenizer = build_tokenizer(TRAINING_TEXTS, vocab_size=600)
    model = build_model(len(tokenizer), seed=0, tokenizer=tokenizer)
    for step in STEPS:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.01 * torch.randn_like(parameter))
        save(model, tokenizer, root / f"checkpoint-{step}")
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tofu-data")
    write_benchmark(directory, people=10, seed=3)
    return directory


def weights_sha256(folder) -> str:
    """The identity's weights hash, computed here from the files: names and contents of the weight files."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode())
    return digest.hexdigest()


def test_a_glob_sweeps_every_checkpoint_with_data_and_reference_read_once(
    run_folder, data_dir, other_tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    common = ["--tasks", TASK, "--data-dir", str(data_dir), "--limit", "4", "--task-args", "max_new_tokens=4",
              "--no-cache", "--quiet"]
    assert main(["--model", str(other_tiny_checkpoint), *common, "--output-path", str(tmp_path / "ref")]) == 0
    reads: list[str] = []
    references: list[str] = []
    read_local_file, load_reference = mu_eval.data.read_local_file, mu_eval.references.load_reference
    monkeypatch.setattr(mu_eval.data, "read_local_file", lambda path: reads.append(str(path)) or read_local_file(path))
    monkeypatch.setattr(mu_eval.references, "load_reference",
                        lambda path: references.append(str(path)) or load_reference(path))
    reference = str(tmp_path / "ref" / "report.json")
    out = tmp_path / "sweep"
    status = main(["--model", str(run_folder / "checkpoint-*"), *common, "--reference", reference,
                   "--output-path", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    assert sorted(reads) == sorted(set(reads)) and reads  # every file once, for three checkpoints
    assert references == [reference]
    summary = json.loads((out / "sweep.json").read_text())
    rows = summary["checkpoints"]
    assert [row["model"] for row in rows] == [str(run_folder / f"checkpoint-{step}") for step in STEPS]
    hashes = set()
    for step, row in zip(STEPS, rows):
        data = json.loads((out / row["report"]).read_text())
        assert row["report"] == f"checkpoint-{step}/report.json"
        assert data["model"]["weights_sha256"] == weights_sha256(run_folder / f"checkpoint-{step}") == row[
            "weights_sha256"]
        assert data["config"]["reference"] == [reference]
        assert row["metrics"] == {f"{TASK}/{name}": metric["value"]
                                  for name, metric in data["tasks"][TASK]["metrics"].items()}
        assert row["metrics"][f"{TASK}/forget_quality"] is not None  # the reference reached every checkpoint
        assert f"checkpoint-{step}" in printed and row["weights_sha256"][:12] in printed
        hashes.add(row["weights_sha256"])
    assert len(hashes) == 3
    assert main(["compare", str(out)]) == 0  # the reports of a sweep merge like any others
    table = capsys.readouterr().out
    assert all(f"checkpoint-{step}" in table for step in STEPS) and "forget_quality" in table
    alone = mu_eval.evaluate(str(run_folder / "checkpoint-100"), [TASK], data_dir=data_dir, limit=4,
                             task_options={TASK: {"max_new_tokens": 4}}, reference=reference, use_cache=False,
                             progress=False)
    assert alone.tasks[TASK]["metrics"] == json.loads((out / rows[-1]["report"]).read_text())["tasks"][TASK]["metrics"]


def test_a_comma_list_keeps_its_order_and_names_clashing_folders_by_their_parents(tmp_path):
    for name in ("a/final", "b/final"):
        (tmp_path / name).mkdir(parents=True)
    models = expand_models(f"{tmp_path / 'b/final'}, {tmp_path / 'a/final'}")
    assert models == [str(tmp_path / "b/final"), str(tmp_path / "a/final")]
    assert list(short_names(models).values()) == ["b--final", "a--final"]
    assert expand_models("org/model") == ["org/model"]  # a hub id is not a glob


@pytest.mark.parametrize(("model", "message"), [
    ("{tmp}/nothing-*", "matches no checkpoint folder"),
    ("{tmp}/c-1,{tmp}/c-*", "more than once"),
])
def test_sweep_mistakes_are_one_line_errors(tmp_path, model, message, capsys):
    (tmp_path / "c-1").mkdir()
    with pytest.raises(SweepError, match=message):
        expand_models(model.format(tmp=tmp_path))
    status = main(["--model", model.format(tmp=tmp_path), "--tasks", "tofu_forget01"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and message in err


def test_a_sweep_writes_folders_not_one_json_file(run_folder, capsys):
    status = main(["--model", str(run_folder / "checkpoint-*"), "--tasks", TASK, "--output-path", "one.json"])
    assert status == 2 and "output_path must be a folder" in capsys.readouterr().err


def test_remembered_rows_are_read_once_and_handed_out_as_copies(tmp_path):
    from mu_eval.data import DatasetSpec, load_rows, remember_rows

    spec = DatasetSpec("someone/facts", None, "train")
    path = tmp_path / "facts" / "train.jsonl"
    path.parent.mkdir()
    path.write_text('{"q": "a", "n": [1]}\n{"q": "b", "n": [2]}\n')
    with remember_rows():
        first = load_rows(spec, tmp_path)
        first[0]["n"].append(99)  # a task changing the rows it was given
        path.write_text('{"q": "changed", "n": [0]}\n')
        second = load_rows(spec, tmp_path)
    assert second == [{"q": "a", "n": [1]}, {"q": "b", "n": [2]}]  # the first read, untouched
    assert load_rows(spec, tmp_path) == [{"q": "changed", "n": [0]}]  # outside the block: read again
