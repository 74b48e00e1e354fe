"""Fully sharded training (FSDP2) under `accelerate launch` with an FSDP config, two processes on the CPU
(gloo): the unlearned model equals the one a single process trains with the same global batch, and it comes
back to the caller whole, exactly as it went in apart from the trained values."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
#: float32 sums in another order (each process's partial gradient, then their reduce-scatter): the weights
#: agree to this, while training moves them by about 1e-3.
TOLERANCE = 1e-6


def without_ids(shape: dict) -> dict:
    """A model's shape (sharded_run.shape_of) less the ids of its parameter objects, which differ by process."""
    return {key: value for key, value in shape.items() if key != "parameter_ids"}


def max_difference(first: dict, second: dict) -> float:
    assert first.keys() == second.keys()
    return max(float((first[k] - second[k]).abs().max()) for k in first)


def test_npo_under_an_fsdp_config_trains_what_one_process_trains(tiny_checkpoint, tmp_path):
    from launchers import FSDP_CONFIG, accelerate_launch
    from training_run import cli_arguments, unlearn

    from mu_eval.cli import main
    from mu_eval.tasks.synthetic_profiles.generator import write_benchmark

    write_benchmark(tmp_path / "data", people=10, seed=3)
    single = unlearn(str(tiny_checkpoint), str(tmp_path / "single"))
    assert main(cli_arguments(str(tiny_checkpoint), str(tmp_path / "data"), str(tmp_path / "cli_single"))) == 0
    done = accelerate_launch(FSDP_CONFIG, [str(HERE / "training_run.py"), str(tiny_checkpoint), str(tmp_path / "two"),
                                           str(tmp_path / "data"), str(tmp_path / "cli_two")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = {r["rank"]: r for r in (json.loads(p.read_text()) for p in tmp_path.glob("two.result-*.json"))}
    assert set(ranks) == {"0", "1"}
    for rank in ranks.values():
        assert rank["forwards"] * 2 == single["forwards"] == 24  # each process ran half of every step's batches
        assert rank["losses"]["first_loss"] == pytest.approx(single["losses"]["first_loss"], rel=1e-5)
        assert rank["losses"]["last_loss"] == pytest.approx(single["losses"]["last_loss"], rel=1e-5)
    alone, shared = (load_file(tmp_path / name / "model.safetensors") for name in ("single", "two"))
    moved = max_difference(alone, load_file(tiny_checkpoint / "model.safetensors"))
    differ = max_difference(alone, shared)
    assert moved > 100 * TOLERANCE and differ <= TOLERANCE, (moved, differ)
    # the command line: train sharded, gather, save once, evaluate the whole unlearned model in both processes
    reports = [json.loads((tmp_path / name / "out" / "report.json").read_text()) for name in ("cli_single", "cli_two")]
    assert reports[1]["engine"]["processes"] == 2
    forget_losses = [report["method"]["forget_loss"] for report in reports]
    assert forget_losses[1]["verdict"] == forget_losses[0]["verdict"] == "raised"
    assert forget_losses[1]["after"] == pytest.approx(forget_losses[0]["after"], rel=1e-5)
    for name, metric in reports[0]["tasks"]["tofu_forget01"]["metrics"].items():
        value = reports[1]["tasks"]["tofu_forget01"]["metrics"][name]["value"]
        assert value == pytest.approx(metric["value"], rel=1e-4, abs=1e-6) if metric["value"] is not None \
            else value is None, name


def test_the_model_comes_back_whole_and_can_be_sharded_again(tiny_checkpoint, tmp_path):
    """RMU (a subset of parameters, the rest frozen for its run), gradient difference through LoRA adapters,
    then gradient ascent, on the same object, the weights kept gathered between forward and backward
    (SHARD_GRAD_OP) in this launch."""
    from launchers import FSDP_CONFIG, accelerate_launch
    from sharded_run import run

    single = run(str(tiny_checkpoint), str(tmp_path / "single"))
    config = FSDP_CONFIG + "  fsdp_reshard_after_forward: false\n"
    done = accelerate_launch(config, [str(HERE / "sharded_run.py"), str(tiny_checkpoint), str(tmp_path / "two")],
                             tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (json.loads(p.read_text()) for p in tmp_path.glob("two.result-*.json")):
        before = rank["before"]
        assert before["parameter_types"] == ["Tensor"] and not before["requires_grad"][0]  # the frozen embedding
        for stage in ("after_rmu", "after_lora", "after_ascent"):
            assert without_ids(rank[stage]) == without_ids(single[stage]), stage  # as one process leaves it
            assert rank[stage]["parameter_ids"] == before["parameter_ids"], stage  # the same objects
        # nothing left over by the sharding itself (peft may leave attributes of its own after a LoRA run)
        assert without_ids(rank["after_rmu"]) == without_ids(before)
        for method in ("rmu", "lora", "ascent"):
            assert rank[method]["last_loss"] == pytest.approx(single[method]["last_loss"], rel=1e-5), method
    alone, shared = (load_file(tmp_path / name / "model.safetensors") for name in ("single", "two"))
    original = load_file(tiny_checkpoint / "model.safetensors")
    assert max_difference(alone, shared) <= TOLERANCE
    assert max_difference(alone, original) > 100 * TOLERANCE
    embedding = "model.embed_tokens.weight"
    assert (shared[embedding] == original[embedding]).all()  # frozen by the caller: untouched in every run


def test_fsdp_settings_the_loop_cannot_honour_are_refused_in_one_line(tiny_checkpoint, tmp_path):
    from launchers import FSDP_CONFIG, accelerate_launch
    from training_run import cli_arguments

    from mu_eval.tasks.synthetic_profiles.generator import write_benchmark

    write_benchmark(tmp_path / "data", people=10, seed=3)
    config = FSDP_CONFIG + "  fsdp_offload_params: true\n"
    done = accelerate_launch(config, ["-m", "mu_eval", *cli_arguments(
        str(tiny_checkpoint), str(tmp_path / "data"), str(tmp_path / "run"))], tmp_path)
    assert done.returncode != 0
    refusals = [line for line in done.stderr.splitlines() if "parameter offloading" in line]
    # the launcher stops the other process once one has failed: one or two refusals, each a single line
    assert 1 <= len(refusals) <= 2, done.stderr[-3000:]
    assert all(line.startswith("mu-eval: error: ") and "FSDP_OFFLOAD_PARAMS" in line for line in refusals)
    assert re.search(r"exitcode\s*:\s*2\b", done.stderr), done.stderr[-3000:]
    assert "Traceback" not in done.stderr.split("parameter offloading")[0], done.stderr[-3000:]
    assert not (tmp_path / "run" / "model").exists() and not (tmp_path / "run" / "out").exists()


@pytest.mark.parametrize(("variable", "value", "refusal"), [
    ("ACCELERATE_USE_DEEPSPEED", "true", "asks for DeepSpeed, .* FSDP2"),
    ("ACCELERATE_USE_MEGATRON_LM", "true", "asks for Megatron-LM, .* FSDP2"),
    ("ACCELERATE_MIXED_PRECISION", "bf16", r"asks for mixed_precision=bf16, .*\(--model-args dtype=bfloat16\)$"),
])
def test_a_config_the_loop_would_not_apply_is_refused_before_any_step(tiny_checkpoint, monkeypatch, variable,
                                                                      value, refusal):
    import torch
    from support import FACTS
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import mu_eval
    from mu_eval.method import MethodError

    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    monkeypatch.setenv("WORLD_SIZE", "2")  # as the launcher describes its processes
    monkeypatch.setenv(variable, value)
    with pytest.raises(MethodError, match=refusal) as error:
        mu_eval.unlearn(model, tokenizer, "npo", forget=FACTS[:2], retain=FACTS[2:4], steps=1, batch_size=2)
    assert "\n" not in str(error.value)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_units_are_the_decoder_layers_or_the_configured_classes(tiny_checkpoint, monkeypatch):
    from transformers import AutoModelForCausalLM

    from mu_eval.sharded_training import ShardingError, unit_classes

    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    assert unit_classes(model) == {"LlamaDecoderLayer"}
    monkeypatch.setenv("FSDP_TRANSFORMER_CLS_TO_WRAP", "LlamaMLP, LlamaAttention")
    assert unit_classes(model) == {"LlamaMLP", "LlamaAttention"}
    monkeypatch.setenv("FSDP_TRANSFORMER_CLS_TO_WRAP", "GPT2Block")
    with pytest.raises(ShardingError, match=r"no module of \['GPT2Block'\] in LlamaForCausalLM"):
        unit_classes(model)


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("full_shard", True), ("false", False),
                                                 ("shard_grad_op", False), ("no_shard", None), ("sometimes", None)])
def test_reshard_after_forward_reads_both_config_spellings(monkeypatch, value, expected):
    from mu_eval.sharded_training import ShardingError, check_settings, reshard_after_forward

    monkeypatch.setenv("FSDP_RESHARD_AFTER_FORWARD", value)
    if expected is None:
        with pytest.raises(ShardingError, match=f"fsdp_reshard_after_forward={value}; .* true .* false"):
            check_settings()
    else:
        assert reshard_after_forward() is expected


def test_a_method_with_gradient_hooks_on_parameters_is_refused(tiny_checkpoint):
    """SURE masks gradients with hooks on the parameters; FSDP's shards would step unmasked. The check comes
    before anything needs a process group."""
    import torch
    from transformers import AutoModelForCausalLM

    from mu_eval.sharded_training import ShardedModel, ShardingError

    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    handle = model.model.layers[0].mlp.down_proj.weight.register_hook(lambda grad: grad * 0)
    with pytest.raises(ShardingError, match=r"gradient hooks on 1 parameters \(e.g. model.layers.0.mlp.down_proj"
                                            r".weight\), .* data-parallel"):
        ShardedModel.shard(model, torch.device("cpu"))
    handle.remove()
    assert not any(type(m).__name__.startswith("FSDP") for m in model.modules())  # refused before sharding


def test_after_a_method_every_process_holds_the_main_process_weights(tiny_checkpoint, tmp_path):
    """A method that left the processes' models apart: the main process's weights reach every process (it saves
    them, and evaluation shares the requests among all)."""
    import torch
    from launchers import torchrun
    from safetensors.torch import load_file

    done = torchrun([str(HERE / "replica_run.py"), str(tiny_checkpoint), str(tmp_path / "two")])
    assert done.returncode == 0, done.stderr[-3000:]
    weights = [torch.tensor(json.loads((tmp_path / f"two.result-{rank}.json").read_text())) for rank in (0, 1)]
    original = load_file(tiny_checkpoint / "model.safetensors")["lm_head.weight"][:4, :4]
    assert torch.equal(weights[0], weights[1])
    assert torch.allclose(weights[0], original + 1.0)  # rank 0 added 1, rank 1 added 2


def test_a_classifier_method_under_a_sharding_config_is_refused(tiny_checkpoint, monkeypatch):
    from support import FACTS
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import mu_eval
    from mu_eval.method import Method, MethodError

    class WholeModelPerProcess(Method):
        name = "whole_model_per_process"
        kind = "classifier"

    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(MethodError, match="asks for FSDP, but method 'whole_model_per_process' trains each "
                                          "process's whole model .* multi-GPU config") as error:
        mu_eval.unlearn(model, tokenizer, WholeModelPerProcess(), forget=FACTS[:2])
    assert "\n" not in str(error.value)
