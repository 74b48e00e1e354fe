"""Quantization: the CPU fallback rounds weights to the bitsandbytes grids and the metric delta is reported."""

from __future__ import annotations

import copy

import pytest
import torch
from attack_support import AttackQATask

import mu_eval
from mu_eval.attack import AttackError
from mu_eval.attacks.quant_sim import (
    FP4_CODE,
    NF4_CODE,
    quantizable_linears,
    quantize_blockwise_4bit,
    quantize_rowwise_int8,
    simulate_quantization,
)
from mu_eval.attacks.quantization import bitsandbytes_available


@pytest.mark.parametrize(("code", "levels"), [("fp4", FP4_CODE), ("nf4", NF4_CODE)])
def test_4bit_blocks_hold_at_most_16_grid_values(code, levels):
    torch.manual_seed(0)
    weight = torch.randn(48, 40) * 0.05  # 1920 values: 30 blocks of 64
    rounded = quantize_blockwise_4bit(weight, code, 64)
    assert rounded.shape == weight.shape and rounded.dtype == weight.dtype
    assert not torch.equal(rounded, weight)
    grid = torch.tensor(sorted(set(levels)))
    for block, original in zip(rounded.reshape(-1, 64), weight.reshape(-1, 64)):
        assert block.unique().numel() <= 16
        absmax = original.abs().max()
        normalised = block / absmax
        assert torch.isclose(normalised[:, None], grid[None, :], atol=1e-6).any(dim=1).all()
        assert block.abs().max() == pytest.approx(float(absmax))  # the block maximum is kept exactly
        # nearest grid value: no other grid value is closer to the original
        distance = (original / absmax - normalised).abs()
        best = (original[:, None] / absmax - grid[None, :]).abs().min(dim=1).values
        assert torch.allclose(distance, best, atol=1e-6)


def test_int8_rows_hold_at_most_255_values():
    torch.manual_seed(1)
    weight = torch.randn(8, 1000)
    rounded = quantize_rowwise_int8(weight)
    for row, original in zip(rounded, weight):
        assert row.unique().numel() <= 255
        steps = row / (original.abs().max() / 127)
        assert torch.allclose(steps, steps.round(), atol=1e-4)
    assert (rounded - weight).abs().max() <= weight.abs().max() / 254 + 1e-6


def test_simulation_rounds_linear_layers_but_not_the_output_head(trained):
    model, _ = trained
    head = model.lm_head.weight.detach().clone()
    original = copy.deepcopy(model)
    stats = simulate_quantization(model, "nf4")
    assert stats["layers"] == len(quantizable_linears(model)) == 2 * 7
    assert 0.9 < stats["fraction_changed"] <= 1 and stats["mean_abs_change"] > 0
    assert torch.equal(model.lm_head.weight, head)
    for (name, layer), (_, before) in zip(quantizable_linears(model), quantizable_linears(original)):
        assert not torch.equal(layer.weight, before.weight), name
        assert all(block.unique().numel() <= 16 for block in layer.weight.reshape(-1)[: 64 * 50].reshape(-1, 64))


def test_quantization_attack_reports_the_delta(trained):
    model, tokenizer = trained
    report = mu_eval.evaluate((model, tokenizer), [AttackQATask()], attacks=["quantization"],
                              attack_options={"quantization": {"method": "simulate", "modes": "4bit;8bit"}},
                              progress=False)
    section = report.data["attacks"]["quantization"]
    assert section["method"] == "simulated" and set(section["modes"]) == {"4bit", "8bit"}
    full = report.tasks["attack_test_qa"]["metrics"]["forget_probability"]["value"]
    for mode in ("4bit", "8bit"):
        row = section["modes"][mode]["tasks"]["attack_test_qa"]["metrics"]["forget_probability"]
        quantized = copy.deepcopy(model)
        simulate_quantization(quantized, mode)
        expected = mu_eval.evaluate((quantized, tokenizer), [AttackQATask()], progress=False)
        value = expected.tasks["attack_test_qa"]["metrics"]["forget_probability"]["value"]
        assert row["full"] == full and row["quantized"] == pytest.approx(value)
        assert row["delta"] == pytest.approx(value - full) and row["delta"] != 0
    assert section["modes"]["4bit"]["config"] == {"bits": 4, "quant_type": "fp4", "block_size": 64,
                                                  "double_quant": False}
    # 4-bit moves the weights much more than 8-bit
    assert section["modes"]["4bit"]["weights"]["mean_abs_change"] > 5 * section["modes"]["8bit"]["weights"][
        "mean_abs_change"]


@pytest.mark.skipif(bitsandbytes_available()[0], reason="not applicable here: bitsandbytes and CUDA are present")
def test_bitsandbytes_without_cuda_is_a_clear_error(trained):
    with pytest.raises(AttackError, match="method=bitsandbytes needs CUDA and bitsandbytes.*method=simulate"):
        mu_eval.evaluate(trained, [AttackQATask()], attacks=["quantization"],
                         attack_options={"quantization": {"method": "bitsandbytes"}}, progress=False)


def test_auto_falls_back_to_simulation_and_says_so(trained):
    if bitsandbytes_available()[0]:
        pytest.skip("not applicable here: bitsandbytes and CUDA are present")
    report = mu_eval.evaluate(trained, [AttackQATask()], attacks=["quantization"],
                              attack_options={"quantization": {"modes": "nf4"}}, progress=False)
    section = report.data["attacks"]["quantization"]
    assert section["method"] == "simulated" and "CUDA" in section["bitsandbytes_unavailable"]
    assert section["modes"]["nf4"]["config"]["quant_type"] == "nf4"
