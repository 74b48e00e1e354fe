"""RandLabel and SalUn: train on D_f with wrong labels plus D_r; SalUn updates only salient weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mu_eval.task_data import ClassifierExample, ClassifierUnlearningData

from .base import ClassifierMethod, sgd
from .data import sample, shuffled_batches


@dataclass
class RandLabelOptions:
    """SalUn's RL settings (10 epochs, SGD lr 0.013, momentum 0.9, weight decay 5e-4, batch 256).

    `retain_fraction` < 1 trains on a seeded sample of D_r each epoch; `max_steps` > 0 stops early.
    """

    epochs: int = 10
    lr: float = 0.013
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    retain_fraction: float = 1.0
    max_steps: int = 0
    seed: int = 0
    progress: bool = True


def wrong_label(label: int, num_labels: int) -> int:
    """MU-Bench's corruption: (y + 1) mod C, never the true label (a random draw may repeat it)."""
    return (label + 1) % num_labels


class RandLabel(ClassifierMethod):
    """RandLabel: cross-entropy on D_f relabelled (y + 1) mod C, concatenated with D_r (MU-Bench `random_label`)."""

    name = "random_label"
    description = "RandLabel: forget set with wrong labels plus the retain set"
    Options = RandLabelOptions

    def gradient_mask(self, model: Any, processor: Any, data: ClassifierUnlearningData) -> dict | None:
        return None

    def run(self, model: Any, processor: Any, data: ClassifierUnlearningData) -> Any:
        s = self.settings
        num_labels = int(model.config.num_labels)
        mask = self.gradient_mask(model, processor, data)
        optimizer = sgd(model, s.lr, s.momentum, s.weight_decay)
        for _ in tqdm(range(s.epochs), desc=self.name, disable=not (s.progress and self.progress)):
            pool: list[tuple[ClassifierExample, int]] = [(e, wrong_label(e.label, num_labels)) for e in data.forget]
            pool += [(e, e.label) for e in sample(data.retain, s.retain_fraction, self.rng)]
            for indices in shuffled_batches(len(pool), s.batch_size, self.rng):
                if not self.budget_left():
                    return model
                chosen = [pool[i] for i in indices]
                inputs, labels = self.batch([e for e, _ in chosen], processor, [y for _, y in chosen])
                self.step(optimizer, F.cross_entropy(model(**inputs).logits, labels), model, mask)
        return model


@dataclass
class SalUnOptions(RandLabelOptions):
    """`threshold` is the fraction of weights (ranked by forget-gradient magnitude) that may change."""

    threshold: float = 0.5
    mask_batch_size: int = 256


class SalUn(RandLabel):
    """SalUn: saliency mask = top `threshold` of |sum over D_f of grad(-CE)| over all weights (one pass),
    then RandLabel with the gradients of the other weights zeroed."""

    name = "salun"
    description = "SalUn: RandLabel restricted to the weights most salient for the forget loss"
    Options = SalUnOptions

    def gradient_mask(self, model: Any, processor: Any, data: ClassifierUnlearningData) -> dict:
        s = self.settings
        model.eval()  # as SalUn's generate_mask: no dropout noise in the saliency
        model.zero_grad(set_to_none=True)
        for begin in range(0, len(data.forget), s.mask_batch_size):
            inputs, labels = self.batch(data.forget[begin : begin + s.mask_batch_size], processor)
            (-F.cross_entropy(model(**inputs).logits, labels)).backward()
        saliency = {n: p.grad.detach().abs() for n, p in model.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        model.train()
        mask = saliency_mask(saliency, s.threshold)
        kept = sum(int(m.sum()) for m in mask.values())
        self.info["mask_fraction"] = kept / max(1, sum(m.numel() for m in mask.values()))
        return mask


def saliency_mask(saliency: dict[str, torch.Tensor], threshold: float) -> dict[str, torch.Tensor]:
    """1 for the `threshold` fraction of entries with the largest saliency over all tensors together."""
    flat = torch.cat([v.flatten() for v in saliency.values()])
    keep = int(len(flat) * threshold)
    if keep <= 0:
        return {n: torch.zeros_like(v) for n, v in saliency.items()}
    cutoff = torch.topk(flat, keep).values.min()
    masks: dict[str, torch.Tensor] = {}
    budget = keep
    for name, values in saliency.items():  # ties at the cut-off are kept in order until the budget is spent
        above = (values > cutoff).to(values.dtype)
        masks[name] = above
        budget -= int(above.sum())
    for name, values in saliency.items():
        if budget <= 0:
            break
        ties = (values == cutoff).flatten().nonzero().flatten()[:budget]
        masks[name].view(-1)[ties] = 1.0
        budget -= len(ties)
    return masks
