"""Spectral DeTuning recovers the base weights shared by several random LoRA fine-tunes."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from attack_support import AttackQATask, load
from peft import LoraConfig, get_peft_model

import mu_eval
from mu_eval.attack import AttackError
from mu_eval.attacks.spectral_detuning import IncreaseRankOnPlateau, estimate_rank, recover, recover_layer
from mu_eval.tiny import build_model

TARGETS = ["q_proj", "v_proj"]


def random_lora(model, seed: int, r: int = 4):
    """A peft LoRA whose A and B are both random (init_lora_weights=False), so it changes the weights."""
    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=TARGETS, init_lora_weights=False)
    return get_peft_model(copy.deepcopy(model), config)


def test_recovery_in_float64_beats_mean_lora():
    base = build_model(128, hidden_size=64, num_layers=2, seed=0)
    variants = []
    for seed in range(5):
        merged = random_lora(base, 100 + seed).merge_and_unload()
        variants.append({k: v.double() for k, v in merged.state_dict().items()})
    truth = {k: v.double() for k, v in base.state_dict().items()}
    recovery = recover(variants, rank=4, iterations=300, base=truth, dtype=torch.float64, progress=False)
    assert sorted(recovery.weights) == sorted(f"model.layers.{i}.self_attn.{t}.weight" for i in range(2)
                                              for t in TARGETS)
    assert recovery.w_error < -8, recovery.w_error
    assert recovery.mean_lora_w_error > -6, recovery.mean_lora_w_error
    assert all(layer["rank"] == 4 for layer in recovery.layers.values())
    # the rank is estimated from two variants when not given: rank(W'_1 - W'_2) = 8 -> r = 4
    layer = "model.layers.0.self_attn.q_proj.weight"
    assert estimate_rank(variants[0][layer], variants[1][layer]) == 4
    estimated = recover(variants, iterations=300, base=truth, dtype=torch.float64, layers=[layer], progress=False)
    assert estimated.layers[layer]["rank"] == 4 and estimated.w_error < -8


def test_recover_layer_is_seeded_and_exact_for_one_shared_base():
    torch.manual_seed(0)
    shared = torch.randn(40, 30, dtype=torch.float64)
    weights = [shared + torch.randn(40, 2, dtype=torch.float64) @ torch.randn(2, 30, dtype=torch.float64)
               for _ in range(6)]
    first, second = recover_layer(weights, 2, 200, seed=3), recover_layer(weights, 2, 200, seed=3)
    assert torch.equal(first.weight, second.weight) and first.rank == 2
    assert ((first.weight - shared) ** 2).mean() < 1e-16


def test_rank_scheduler_follows_the_spec():
    scheduler = IncreaseRankOnPlateau(iterations=100, end_rank=8, patience=2)
    ranks = [scheduler.step(loss) for loss in [5.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0]]
    # improvement at epochs 1-2, bad epochs 3, 4, 5 (> patience at the third): rank 1 -> 2; then again
    assert ranks == [1, 1, 1, 1, 2, 2, 2, 2, 4]
    assert scheduler.best == 3.0
    while scheduler.epoch < 49:
        scheduler.step(3.0)
    assert scheduler.rank <= 8
    assert scheduler.step(3.0) == 8  # epoch 50 = T / 2: forced to the end rank
    additive = IncreaseRankOnPlateau(iterations=100, end_rank=3, patience=0, factor_type="add")
    assert [additive.step(1.0) for _ in range(4)] == [1, 2, 3, 3]


@pytest.fixture(scope="module")
def adapters(tiny_checkpoint, tmp_path_factory):
    """Five random LoRA adapters of the tiny checkpoint, saved as peft adapter folders."""
    model, _ = load(tiny_checkpoint)
    folders = []
    for seed in range(5):
        folder = tmp_path_factory.mktemp(f"lora{seed}")
        random_lora(model, seed).save_pretrained(folder)
        folders.append(folder)
    return folders


def test_attack_recovers_saves_and_evaluates(tiny_checkpoint, adapters, tmp_path):
    config = json.loads((adapters[0] / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_checkpoint)  # adapters find their base themselves
    options = {"variants": ";".join(map(str, adapters)), "base": str(tiny_checkpoint), "iterations": "200",
               "output": str(tmp_path / "recovered"), "evaluate": "true"}
    report = mu_eval.evaluate(str(tiny_checkpoint), [AttackQATask()], attacks=["spectral_detuning"],
                              attack_options={"spectral_detuning": options}, progress=False)
    section = report.data["attacks"]["spectral_detuning"]
    assert section["n_variants"] == 5 and section["n_layers"] == 4
    assert section["w_error"] < -9 and section["mean_lora_w_error"] > -6
    assert section["w_error"] < section["mean_lora_w_error"] - 4
    assert all(layer["rank"] == 4 for layer in section["layers"].values())  # read from the adapters
    recovered, _ = load(tmp_path / "recovered")
    base, _ = load(tiny_checkpoint)
    layer = "model.layers.1.self_attn.v_proj.weight"
    assert torch.allclose(recovered.state_dict()[layer], base.state_dict()[layer], atol=1e-4)
    metrics = section["tasks"]["attack_test_qa"]["metrics"]["forget_probability"]
    assert metrics["recovered"] == pytest.approx(metrics["model"], rel=1e-3)  # the model under test is the base


def test_missing_variants_or_base_are_errors(tiny_checkpoint, adapters, tmp_path):
    with pytest.raises(AttackError, match="needs variants"):
        mu_eval.evaluate(str(tiny_checkpoint), [AttackQATask()], attacks=["spectral_detuning"],
                         attack_options={"spectral_detuning": {"variants": str(adapters[0])}}, progress=False)
    orphan = tmp_path / "orphan"
    orphan.mkdir()
    config = json.loads((adapters[0] / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "some-org/some-hub-model"
    (orphan / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(AttackError, match="pass adapter_base=PATH"):
        recover([orphan, adapters[1]], iterations=1, progress=False)
    with pytest.raises(AttackError, match="not a folder"):
        recover([tmp_path / "missing", adapters[1]], iterations=1, progress=False)
