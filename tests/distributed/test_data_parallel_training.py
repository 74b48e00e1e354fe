"""Unlearning in data-parallel processes: under `torchrun --nproc_per_node 2` on the CPU (gloo), NPO (with
its reference and retain terms) shares each optimizer step's micro-batches between the processes, and the
saved model equals the one a single process trains with the same global batch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
#: float32 sums in another order (two partial sums, then their sum): the weights agree to this, while the
#: training moves them by about 1e-3.
TOLERANCE = 1e-6


def test_two_processes_train_the_weights_one_process_trains(tiny_checkpoint, tmp_path):
    from launchers import torchrun
    from training_run import cli_arguments, unlearn

    from mu_eval.cli import main
    from mu_eval.tasks.synthetic_profiles.generator import write_benchmark

    write_benchmark(tmp_path / "data", people=10, seed=3)
    single = unlearn(str(tiny_checkpoint), str(tmp_path / "single"))
    assert main(cli_arguments(str(tiny_checkpoint), str(tmp_path / "data"), str(tmp_path / "cli_single"))) == 0
    done = torchrun([str(HERE / "training_run.py"), str(tiny_checkpoint), str(tmp_path / "two"),
                     str(tmp_path / "data"), str(tmp_path / "cli_two")])
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = {r["rank"]: r for r in (json.loads(path.read_text()) for path in tmp_path.glob("two.result-*.json"))}
    assert set(ranks) == {"0", "1"}
    assert single["forwards"] == 3 * 4 * 2  # steps x micro-batches x (forget, retain)
    for rank in ranks.values():
        assert rank["forwards"] * 2 == single["forwards"]  # each process ran half of every step's micro-batches
        assert rank["losses"]["steps"] == single["losses"]["steps"] == 3
        assert rank["losses"]["first_loss"] == pytest.approx(single["losses"]["first_loss"], rel=1e-5)
        assert rank["losses"]["last_loss"] == pytest.approx(single["losses"]["last_loss"], rel=1e-5)
    alone, shared = (load_file(tmp_path / name / "model.safetensors") for name in ("single", "two"))
    original = load_file(tiny_checkpoint / "model.safetensors")
    assert alone.keys() == shared.keys()
    moved = max(float((alone[k] - original[k]).abs().max()) for k in alone)
    differ = max(float((alone[k] - shared[k]).abs().max()) for k in alone)
    assert moved > 100 * TOLERANCE and differ <= TOLERANCE, (moved, differ)
    # the command line: train, save once, evaluate the unlearned model, all in the two processes
    reports = [json.loads((tmp_path / name / "out" / "report.json").read_text()) for name in ("cli_single", "cli_two")]
    assert reports[1]["engine"]["processes"] == 2 and sum(reports[1]["engine"]["answered_by_process"]) > 0
    assert reports[0]["method"]["info"]["steps"] == reports[1]["method"]["info"]["steps"] == 2
    assert (tmp_path / "cli_two" / "model" / "model.safetensors").is_file()
    assert reports[1]["method"]["saved_to"] == str(tmp_path / "cli_two" / "model")
    for name, metric in reports[0]["tasks"]["tofu_forget01"]["metrics"].items():
        value = reports[1]["tasks"]["tofu_forget01"]["metrics"][name]["value"]
        if metric["value"] is None:  # forget quality and privleak without a reference
            assert value is None, name
        else:
            assert value == pytest.approx(metric["value"], rel=1e-4, abs=1e-6), name


def test_each_process_draws_its_own_batches_of_the_one_sequence():
    from mu_eval.training import _batch_share, batches

    items = [type("Item", (), {"input_ids": (i,), "start": 0})() for i in range(10)]

    def first_ids(count: int) -> list[list[int]]:
        stream = batches(items, 3, seed=4, collate_fn=lambda chunk: [item.input_ids[0] for item in chunk])
        return [next(stream) for _ in range(count)]

    whole = first_ids(8)
    shares = []
    for rank in (0, 1):
        token = _batch_share.set((rank, 2))
        try:
            shares.append(first_ids(4))
        finally:
            _batch_share.reset(token)
    assert shares[0] == whole[0::2] and shares[1] == whole[1::2]
    assert torch.tensor(sum(whole, [])).bincount(minlength=10).min() >= 1  # over epochs: every item drawn
