"""A sharding accelerate config (FSDP, DeepSpeed, Megatron-LM) is refused by the training loop with one line,
on the CPU too, where accelerate itself ignores it and would start plain replicas: `accelerate launch` with
an FSDP config runs no training step, saves nothing, and its processes exit 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

FSDP_CONFIG = """compute_environment: LOCAL_MACHINE
distributed_type: FSDP
num_machines: 1
num_processes: 2
machine_rank: 0
mixed_precision: 'no'
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_state_dict_type: FULL_STATE_DICT
"""


@pytest.mark.parametrize(("variable", "name"), [("ACCELERATE_USE_FSDP", "FSDP"),
                                                ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed"),
                                                ("ACCELERATE_USE_MEGATRON_LM", "Megatron-LM")])
def test_a_sharding_launch_is_refused_before_any_step(tiny_checkpoint, monkeypatch, variable, name):
    from support import FACTS
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import mu_eval
    from mu_eval.method import MethodError

    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    monkeypatch.setenv("WORLD_SIZE", "2")  # as the launcher describes its processes
    monkeypatch.setenv(variable, "true")
    with pytest.raises(MethodError, match=f"asks for {name}, .* data-parallel only") as error:
        mu_eval.unlearn(model, tokenizer, "npo", forget=FACTS[:2], retain=FACTS[2:4], steps=1, batch_size=2)
    assert "\n" not in str(error.value)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_accelerate_launch_with_an_fsdp_config_exits_2_without_training(tiny_checkpoint, tmp_path):
    from test_data_parallel import free_port
    from training_run import cli_arguments

    from mu_eval.tasks.synthetic_profiles.generator import write_benchmark

    write_benchmark(tmp_path / "data", people=10, seed=3)
    config = tmp_path / "fsdp.yaml"
    config.write_text(FSDP_CONFIG)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    for variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        environment.pop(variable, None)
    done = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--main_process_ip",
         "127.0.0.1", "--main_process_port", str(free_port()), "-m", "mu_eval",
         *cli_arguments(str(tiny_checkpoint), str(tmp_path / "data"), str(tmp_path / "run"))],
        env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    refusals = [line for line in done.stderr.splitlines() if "asks for FSDP" in line]
    # the launcher stops the other process once one has failed: one or two refusals, each a single line
    assert 1 <= len(refusals) <= 2, done.stderr[-3000:]
    assert all(line.startswith("mu-eval: error: ") and "data-parallel only" in line for line in refusals)
    assert re.search(r"exitcode\s*:\s*2\b", done.stderr), done.stderr[-3000:]  # the failed process's own code
    assert "Traceback" not in done.stderr.split("asks for FSDP")[0], done.stderr[-3000:]
    assert not (tmp_path / "run" / "model").exists() and not (tmp_path / "run" / "out").exists()
