"""Read weight matrices one at a time from checkpoints, peft LoRA adapters or in-memory state dicts.

Spectral DeTuning needs the same layer of N models at once, never whole models, so sources load lazily:
a safetensors checkpoint is memory-mapped, and a LoRA adapter is merged on demand as
W' = W_base + scale * B @ A (scale = alpha / r, or alpha / sqrt(r) with rsLoRA) in float64.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mu_eval.attack import AttackError

ADAPTER_PREFIX = "base_model.model."


class DictWeights:
    """An in-memory state dict."""

    def __init__(self, tensors: Mapping[str, torch.Tensor], label: str = "state dict") -> None:
        self.tensors = tensors
        self.label = label

    def keys(self) -> list[str]:
        return list(self.tensors)

    def get(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def lora_rank(self, name: str) -> int | None:
        return None


class CheckpointWeights:
    """A transformers checkpoint folder (safetensors, sharded or not, or pytorch_model.bin)."""

    def __init__(self, path: str | Path) -> None:
        from safetensors import safe_open

        self.path = Path(path)
        self.label = str(self.path)
        self.files: dict[str, Any] = {}
        self.where: dict[str, str] = {}
        self.state: dict[str, torch.Tensor] | None = None
        index = self.path / "model.safetensors.index.json"
        single = self.path / "model.safetensors"
        if index.is_file():
            self.where = dict(json.loads(index.read_text())["weight_map"])
        elif single.is_file():
            self.where = {name: single.name for name in safe_open(str(single), framework="pt").keys()}
        elif (self.path / "pytorch_model.bin").is_file():
            self.state = torch.load(self.path / "pytorch_model.bin", map_location="cpu", weights_only=True)
        else:
            raise AttackError(f"no model weights (model.safetensors or pytorch_model.bin) in {self.path}")

    def keys(self) -> list[str]:
        return list(self.state) if self.state is not None else list(self.where)

    def get(self, name: str) -> torch.Tensor:
        from safetensors import safe_open

        if self.state is not None:
            return self.state[name]
        file = self.where[name]
        if file not in self.files:
            self.files[file] = safe_open(str(self.path / file), framework="pt")
        return self.files[file].get_tensor(name)

    def lora_rank(self, name: str) -> int | None:
        return None


class AdapterWeights:
    """A peft LoRA adapter folder merged onto a base source, layer by layer."""

    def __init__(self, path: str | Path, base: Any) -> None:
        self.path = Path(path)
        self.label = str(self.path)
        self.base = base
        config = json.loads((self.path / "adapter_config.json").read_text())
        if config.get("peft_type", "LORA") != "LORA" or config.get("use_dora"):
            kind = "DoRA" if config.get("use_dora") else config.get("peft_type")
            raise AttackError(f"{self.path}: only plain LoRA adapters can be merged, not {kind}")
        tensors = self._load_tensors()
        pairs: dict[str, dict[str, torch.Tensor]] = {}
        for key, tensor in tensors.items():
            match = re.match(r"(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$", key)
            if match is None:
                continue
            module = match.group(1).removeprefix(ADAPTER_PREFIX)
            pairs.setdefault(module, {})[match.group(2)] = tensor
        self.deltas: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = {}
        for module, pair in pairs.items():
            if set(pair) != {"A", "B"}:
                raise AttackError(f"{self.path}: LoRA module {module} lacks its A or B matrix")
            r = pair["A"].shape[0]
            alpha = float(config.get("lora_alpha", r))
            for pattern, value in (config.get("alpha_pattern") or {}).items():
                if re.fullmatch(rf"(.*\.)?{pattern}", module):
                    alpha = float(value)
            scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
            self.deltas[f"{module}.weight"] = (pair["A"], pair["B"], scale)
        self.fan_in_fan_out = bool(config.get("fan_in_fan_out"))
        if not self.deltas:
            raise AttackError(f"{self.path}: the adapter holds no LoRA matrices")

    def _load_tensors(self) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        if (self.path / "adapter_model.safetensors").is_file():
            return load_file(str(self.path / "adapter_model.safetensors"))
        if (self.path / "adapter_model.bin").is_file():
            return torch.load(self.path / "adapter_model.bin", map_location="cpu", weights_only=True)
        raise AttackError(f"no adapter weights (adapter_model.safetensors) in {self.path}")

    def keys(self) -> list[str]:
        return self.base.keys()

    def get(self, name: str) -> torch.Tensor:
        weight = self.base.get(name)
        if name not in self.deltas:
            return weight
        a, b, scale = self.deltas[name]
        delta = scale * (b.double() @ a.double())
        return weight.double() + (delta.T if self.fan_in_fan_out else delta)

    def lora_rank(self, name: str) -> int | None:
        return self.deltas[name][0].shape[0] if name in self.deltas else None


def adapter_base_path(path: Path) -> str | None:
    config = json.loads((path / "adapter_config.json").read_text())
    return config.get("base_model_name_or_path")


def open_weights(item: Any, adapter_base: Any = None) -> Any:
    """A weight source for a checkpoint folder, an adapter folder (merged onto `adapter_base`) or a dict."""
    if isinstance(item, Mapping):
        return DictWeights(item)
    path = Path(item).expanduser()
    if not path.is_dir():
        raise AttackError(f"weights not found: {path} is not a folder")
    if (path / "adapter_config.json").is_file():
        base = adapter_base if adapter_base is not None else adapter_base_path(path)
        if base is None or (not isinstance(base, Mapping) and not Path(base).expanduser().is_dir()):
            raise AttackError(
                f"{path} is a LoRA adapter: its merged weights need the model it was trained on; pass "
                f"adapter_base=PATH (the adapter names {base!r}, which is not a local folder)"
            )
        return AdapterWeights(path, open_weights(base))
    return CheckpointWeights(path)
