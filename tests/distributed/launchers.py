"""Starting two CPU processes as a user would: `torchrun`, or `accelerate launch` with a config file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher_environment(**extra: str) -> dict[str, str]:
    """This environment without a launcher's own variables (pytest may run under one), one thread per process,
    and `extra`."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **extra}
    for variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        environment.pop(variable, None)
    return environment


def run(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)


def torchrun(arguments: list[str], **extra: str) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node 2` on `arguments` (a script and its arguments); `extra` environment."""
    return run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
                f"--master_port={free_port()}", *arguments], launcher_environment(**extra))


def accelerate_launch(config: str, arguments: list[str], folder: Path) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file` with `config` (YAML text) written into `folder`; `arguments` start
    with a script path or `-m module`."""
    path = folder / "accelerate.yaml"
    path.write_text(config)
    return run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(path),
                "--main_process_ip", "127.0.0.1", "--main_process_port", str(free_port()), *arguments],
               launcher_environment())
