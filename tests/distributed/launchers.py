"""Starting two CPU processes with `accelerate launch` and a config file, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_data_parallel import free_port

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


def accelerate_launch(config: str, arguments: list[str], folder: Path) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file` with `config` (YAML text) written into `folder`; `arguments` start
    with a script path or `-m module`."""
    path = folder / "accelerate.yaml"
    path.write_text(config)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    for variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        environment.pop(variable, None)
    return subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(path), "--main_process_ip",
         "127.0.0.1", "--main_process_port", str(free_port()), *arguments],
        env=environment, capture_output=True, text=True, timeout=300)
