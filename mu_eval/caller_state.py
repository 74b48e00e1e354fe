"""The caller's world, put back as it was: `mu_eval.evaluate` and `mu_eval.unlearn` run inside a training loop,
seed the global generators and switch the model to eval mode; without this the loop's dropout and data
shuffling would restart from the same state after every evaluation, and a frozen layer could come back
trainable."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: Tokenizer attributes the harness may set while it encodes (padding for batched generation, truncation).
TOKENIZER_ATTRIBUTES = ("padding_side", "truncation_side", "pad_token", "model_max_length")


@dataclass
class RandomState:
    """Every global generator a run seeds: Python's, NumPy's, torch's CPU generator and, when CUDA is already
    in use, each CUDA device's (CUDA is never initialised just to read its state)."""

    python: Any
    numpy: Any
    torch_cpu: Any
    torch_cuda: list[Any] | None

    @classmethod
    def capture(cls) -> RandomState:
        import numpy as np
        import torch

        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return cls(random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda)

    def restore(self) -> None:
        import numpy as np
        import torch

        random.setstate(self.python)
        np.random.set_state(self.numpy)
        torch.set_rng_state(self.torch_cpu)
        if self.torch_cuda is not None:
            torch.cuda.set_rng_state_all(self.torch_cuda)


@dataclass
class ModelState:
    """Per module: train/eval mode; per parameter and buffer: device, dtype and (parameters) `requires_grad`.

    Recorded module by module rather than from the top-level flags, because a caller may keep parts in eval
    mode or frozen (a frozen reference inside the model, an embedding) while the rest trains."""

    modes: dict[str, bool] = field(default_factory=dict)
    parameters: dict[tuple[str, str], tuple[Any, Any, bool]] = field(default_factory=dict)
    buffers: dict[tuple[str, str], tuple[Any, Any]] = field(default_factory=dict)

    @classmethod
    def capture(cls, model: Any) -> ModelState:
        state = cls()
        for name, module in model.named_modules(remove_duplicate=False):
            state.modes[name] = module.training
            for key, parameter in module._parameters.items():
                if parameter is not None:
                    state.parameters[name, key] = (parameter.device, parameter.dtype, parameter.requires_grad)
            for key, buffer in module._buffers.items():
                if buffer is not None:
                    state.buffers[name, key] = (buffer.device, buffer.dtype)
        return state

    def restore(self, model: Any) -> None:
        """Put back what changed; a tensor already on its device in its dtype is not touched (no copy)."""
        for name, module in model.named_modules(remove_duplicate=False):
            if name in self.modes and module.training != self.modes[name]:
                module.training = self.modes[name]  # this module only: its children have their own entries
            for key, parameter in module._parameters.items():
                if parameter is None or (name, key) not in self.parameters:
                    continue
                device, dtype, requires_grad = self.parameters[name, key]
                if parameter.device != device or parameter.dtype != dtype:
                    parameter.data = parameter.data.to(device=device, dtype=dtype)
                if parameter.requires_grad != requires_grad:
                    parameter.requires_grad_(requires_grad)
            for key, buffer in module._buffers.items():
                if buffer is None or (name, key) not in self.buffers:
                    continue
                device, dtype = self.buffers[name, key]
                if buffer.device != device or buffer.dtype != dtype:
                    module._buffers[key] = buffer.to(device=device, dtype=dtype)


def _tokenizer_state(tokenizer: Any) -> dict[str, Any]:
    return {name: getattr(tokenizer, name) for name in TOKENIZER_ATTRIBUTES if hasattr(tokenizer, name)}


def _restore_tokenizer(tokenizer: Any, state: dict[str, Any]) -> None:
    for name, value in state.items():
        if getattr(tokenizer, name, None) != value:
            setattr(tokenizer, name, value)


def _grad_flags() -> tuple[bool, bool]:
    import torch

    return torch.is_grad_enabled(), torch.are_deterministic_algorithms_enabled()


@contextmanager
def preserved_state(model: Any = None, tokenizer: Any = None) -> Iterator[None]:
    """Run the body, then put back the global random generators, torch's grad mode and deterministic flag,
    `model`'s modes, devices, dtypes and `requires_grad` flags (when it is a torch module) and `tokenizer`'s
    padding and truncation settings, whether the body returned or raised. Weights are not restored: what
    `unlearn` changed in them is its result."""
    import torch

    random_state = RandomState.capture()
    grad_enabled, deterministic = _grad_flags()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    model_state = ModelState.capture(model) if isinstance(model, torch.nn.Module) else None
    tokenizer_state = _tokenizer_state(tokenizer) if tokenizer is not None else None
    try:
        yield
    finally:
        random_state.restore()
        torch.set_grad_enabled(grad_enabled)
        if (deterministic, warn_only) != (torch.are_deterministic_algorithms_enabled(),
                                          torch.is_deterministic_algorithms_warn_only_enabled()):
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        if model_state is not None:
            model_state.restore(model)
        if tokenizer_state is not None:
            _restore_tokenizer(tokenizer, tokenizer_state)
