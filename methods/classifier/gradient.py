"""Gradient methods on labelled data: FT, NegGrad, NegGrad+ and l1-sparse (docs/methods.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mu_eval.task_data import ClassifierUnlearningData

from .base import ClassifierMethod, sgd
from .data import endless_batches, shuffled_batches


@dataclass
class GradientOptions:
    """SGD settings. `max_steps` > 0 stops early (smoke runs); `retain_steps_per_epoch` 0 = one retain pass."""

    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 256
    max_steps: int = 0
    seed: int = 0
    progress: bool = True


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, _epoch: int) -> torch.Tensor:
    return F.cross_entropy(logits, labels)


def negated_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, _epoch: int) -> torch.Tensor:
    """Gradient ascent on the batch: minimising -CE pushes the labels' probability down."""
    return -F.cross_entropy(logits, labels)


class _EpochLoop(ClassifierMethod):
    def _epochs_over(
        self, model: Any, processor: Any, examples: list, loss_fn: Callable[[torch.Tensor, torch.Tensor, int], Any]
    ) -> Any:
        """`epochs` shuffled passes over one set, one SGD step per batch on loss_fn(logits, labels, epoch)."""
        s = self.settings
        optimizer = sgd(model, s.lr, s.momentum, s.weight_decay)
        for epoch in tqdm(range(s.epochs), desc=self.name, disable=not (s.progress and self.progress)):
            for indices in shuffled_batches(len(examples), s.batch_size, self.rng):
                if not self.budget_left():
                    return model
                inputs, labels = self.batch([examples[i] for i in indices], processor)
                self.step(optimizer, loss_fn(model(**inputs).logits, labels, epoch), model)
        return model


@dataclass
class FineTuneOptions(GradientOptions):
    momentum: float = 0.9
    weight_decay: float = 5e-4


class FineTune(_EpochLoop):
    """FT: fine-tune on D_r only (the SalUn-protocol baseline); forgetting comes from catastrophic drift."""

    name = "ft"
    description = "FT: cross-entropy on the retain set only"
    Options = FineTuneOptions

    def run(self, model: Any, processor: Any, data: ClassifierUnlearningData) -> Any:
        return self._epochs_over(model, processor, data.retain, cross_entropy)


class NegGrad(_EpochLoop):
    """NegGrad / gradient ascent: minimise -CE on D_f (MU-Bench `neggrad`); no retain term."""

    name = "neggrad"
    description = "NegGrad: gradient ascent on the forget set"
    Options = GradientOptions

    def run(self, model: Any, processor: Any, data: ClassifierUnlearningData) -> Any:
        return self._epochs_over(model, processor, data.forget, negated_cross_entropy)


@dataclass
class NegGradPlusOptions(GradientOptions):
    """alpha weighs the retain CE, (1 - alpha) the negated forget CE (spec: 0.95, SGD lr 0.01, 10 epochs)."""

    alpha: float = 0.95
    retain_steps_per_epoch: int = 0


class NegGradPlus(_EpochLoop):
    """NegGrad+: alpha * CE(D_r) - (1 - alpha) * CE(D_f); an epoch is one pass over D_r, with D_f batches
    cycled beside it (D_f is the smaller set), unless `retain_steps_per_epoch` caps it."""

    name = "neggrad_plus"
    description = "NegGrad+: alpha * CE(retain) - (1 - alpha) * CE(forget)"
    Options = NegGradPlusOptions

    def run(self, model: Any, processor: Any, data: ClassifierUnlearningData) -> Any:
        s = self.settings
        optimizer = sgd(model, s.lr, s.momentum, s.weight_decay)
        forget_stream = endless_batches(len(data.forget), s.batch_size, self.rng)
        for _ in tqdm(range(s.epochs), desc=self.name, disable=not (s.progress and self.progress)):
            retain_batches = shuffled_batches(len(data.retain), s.batch_size, self.rng)
            if s.retain_steps_per_epoch:
                retain_batches = retain_batches[: s.retain_steps_per_epoch]
            for indices in retain_batches:
                if not self.budget_left():
                    return model
                r_inputs, r_labels = self.batch([data.retain[i] for i in indices], processor)
                f_inputs, f_labels = self.batch([data.forget[i] for i in next(forget_stream)], processor)
                retain_loss = F.cross_entropy(model(**r_inputs).logits, r_labels)
                forget_loss = F.cross_entropy(model(**f_inputs).logits, f_labels)
                self.step(optimizer, s.alpha * retain_loss - (1 - s.alpha) * forget_loss, model)
        return model


@dataclass
class L1SparseOptions(FineTuneOptions):
    """gamma is the l1 weight at the first epoch, decayed linearly to 0 at the last (Jia et al. 2023)."""

    gamma: float = 5e-4


class L1Sparse(_EpochLoop):
    """l1-sparse: CE(D_r) + gamma_t * ||theta||_1 with gamma_t = gamma * (1 - epoch / epochs)."""

    name = "l1_sparse"
    description = "l1-sparse: retain fine-tuning with a linearly decaying l1 penalty"
    Options = L1SparseOptions

    def run(self, model: Any, processor: Any, data: ClassifierUnlearningData) -> Any:
        s = self.settings
        parameters = [p for p in model.parameters() if p.requires_grad]

        def loss(logits: torch.Tensor, labels: torch.Tensor, epoch: int) -> torch.Tensor:
            l1 = torch.stack([p.abs().sum() for p in parameters]).sum()
            return F.cross_entropy(logits, labels) + s.gamma * (1 - epoch / s.epochs) * l1

        return self._epochs_over(model, processor, data.retain, loss)
