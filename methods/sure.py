"""SURE: GA or NPO (with the shared retain term) whose updates reach only the salient neurons.

A neuron is an output row of a weight matrix (a column of GPT-2's transposed `Conv1D`); a matrix's bias
entry belongs to the same neuron as its row. Before training, one pass over the forget set accumulates the
gradient of the forget loss; the neurons whose gradient-row norm is at or above the `threshold` percentile
of all neurons' norms (and above zero) are salient. The mask is computed once and kept for the whole run:
every other row gets a zero gradient, and parameters outside any matrix (norm scales) are not trained.

Adam leaves a row whose gradient is always zero exactly where it was, but AdamW's decoupled weight decay
would still shrink it, so SURE runs with `weight_decay` 0 and refuses any other value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy
import torch

from mu_eval.method import MethodOptionError
from mu_eval.training import nll_loss
from mu_eval.training_models import Reference

from .base import LLMMethod, TrainOptions
from .npo import npo_loss

OBJECTIVES = ("ga", "npo")


@dataclass
class NeuronParam:
    """A trainable parameter that belongs to neurons: its neuron axis and the matrix whose mask it follows."""

    param: torch.nn.Parameter
    axis: int
    matrix: str


def neuron_params(model: Any) -> dict[str, NeuronParam]:
    """Every trainable matrix (rows along its output axis) and every bias of such a matrix, by name."""
    found: dict[str, NeuronParam] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        owner_name, _, leaf = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        axis = 1 if type(owner).__name__ == "Conv1D" else 0  # GPT-2 stores (in, out)
        if param.dim() >= 2:
            found[name] = NeuronParam(param, axis, name)
            continue
        weight = getattr(owner, "weight", None)
        if leaf == "bias" and isinstance(weight, torch.Tensor) and weight.dim() >= 2 and weight.requires_grad:
            if param.shape[0] == weight.shape[axis]:
                found[name] = NeuronParam(param, 0, f"{owner_name}.weight" if owner_name else "weight")
    return found


def row_norms(grad: torch.Tensor, axis: int) -> torch.Tensor:
    """L2 norm of the gradient of each neuron (every dimension but `axis` reduced)."""
    others = [d for d in range(grad.dim()) if d != axis]
    return torch.linalg.vector_norm(grad.float(), dim=others)


@dataclass
class SUREOptions(TrainOptions):
    """`objective` ga or npo (`beta` for NPO); `threshold` is the saliency percentile."""

    objective: str = "ga"
    beta: float = 0.1
    threshold: float = 90.0
    weight_decay: float = 0.0


class SURE(LLMMethod):
    """Forget loss GA or NPO, updates masked to the neurons with the largest forget-gradient norms."""

    name = "sure"
    description = "SURE: GA/NPO (+ retain term) updating only neurons with forget-gradient norm >= 90th percentile."
    Options: ClassVar[type] = SUREOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        settings = self.settings
        if settings.objective not in OBJECTIVES:
            raise MethodOptionError(f"method 'sure': objective={settings.objective!r}; choose {', '.join(OBJECTIVES)}")
        if not 0 <= settings.threshold <= 100:
            raise MethodOptionError(f"method 'sure': threshold={settings.threshold} is not a percentile (0-100)")
        if settings.weight_decay != 0:
            raise MethodOptionError(
                "method 'sure' updates only the salient neurons, and AdamW's weight decay would move the others; "
                "leave weight_decay=0"
            )
        if settings.lora_r > 0:
            raise MethodOptionError("method 'sure' masks rows of the model's own weights; it does not run with LoRA")
        self.masks: dict[str, torch.Tensor] = {}

    def uses_reference(self) -> bool:
        return self.settings.objective == "npo"

    def forget_loss(self, model: Any, batch: Any, reference: Reference | None) -> torch.Tensor:
        if self.settings.objective == "npo":
            assert reference is not None
            return npo_loss(model, batch, reference, self.settings.beta)
        return -nll_loss(model, batch)

    def saliency(self, model: Any, forget: list[Any], reference: Reference | None) -> dict[str, torch.Tensor]:
        """Per matrix, which rows are salient: one pass of the forget loss's gradient over the forget set."""
        params = neuron_params(model)
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        model.zero_grad(set_to_none=True)
        size = max(self.settings.batch_size, 1)
        for begin in range(0, len(forget), size):
            chunk = forget[begin : begin + size]
            loss = self.forget_loss(model, self.collate_forget(chunk).to(device), reference)
            (loss * len(chunk) / len(forget)).backward()
        norms = {}
        for name, item in params.items():
            if item.matrix == name:
                grad = item.param.grad
                norms[name] = row_norms(grad, item.axis) if grad is not None else item.param.new_zeros(
                    item.param.shape[item.axis], dtype=torch.float32)
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        all_norms = torch.cat([n.flatten().cpu() for n in norms.values()]).double().numpy()
        threshold = float(numpy.percentile(all_norms, self.settings.threshold))  # linear interpolation
        self.info.update(threshold_norm=threshold)
        return {name: (n >= threshold) & (n > 0) for name, n in norms.items()}

    @contextmanager
    def training_scope(self, model: Any, forget: list[Any], reference: Reference | None) -> Iterator[None]:
        self.masks = self.saliency(model, forget, reference)
        params = neuron_params(model)
        saved = [(p, p.requires_grad) for p in model.parameters()]
        handles = []
        for parameter, _ in saved:
            parameter.requires_grad_(False)
        for item in params.values():
            rows = self.masks[item.matrix]
            if not rows.any():
                continue
            item.param.requires_grad_(True)
            if not rows.all():
                shape = [1] * item.param.dim()
                shape[item.axis] = -1
                keep = rows.to(item.param.dtype).view(shape)
                handles.append(item.param.register_hook(lambda grad, keep=keep: grad * keep))
        selected = sum(int(m.sum()) for m in self.masks.values())
        self.info.update(objective=self.settings.objective, salient_neurons=selected,
                         neurons=sum(m.numel() for m in self.masks.values()))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            for parameter, flag in saved:
                parameter.requires_grad_(flag)
