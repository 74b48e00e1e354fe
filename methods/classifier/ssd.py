"""Selective Synaptic Dampening (Foster et al., AAAI 2024): dampen weights far more important to D_f than D.

No training: importances are mean squared gradients of the cross-entropy over batches (the authors'
`calc_importance`), on the full training data D = D_r + D_f and on D_f; where I_Df > alpha * I_D the weight
is multiplied by min(lambda * I_D / I_Df, 1). Computed in eval mode so that dropout adds no noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mu_eval.task_data import ClassifierExample, ClassifierUnlearningData

from .base import ClassifierMethod
from .data import sample


@dataclass
class SSDOptions:
    """alpha (selection weighting) 10 and lambda (dampening constant) 1, as in the paper.

    `full_fraction` < 1 estimates I_D on a seeded sample of D (D_f is always used whole).
    """

    alpha: float = 10.0
    dampening: float = 1.0
    batch_size: int = 64
    full_fraction: float = 1.0
    seed: int = 0
    progress: bool = True


class SSD(ClassifierMethod):
    name = "ssd"
    description = "SSD: dampen parameters specialised to the forget set, no training"
    Options = SSDOptions

    def importance(self, model: Any, processor: Any, examples: list[ClassifierExample], desc: str) -> dict:
        totals = {n: torch.zeros_like(p) for n, p in model.named_parameters() if p.requires_grad}
        size = self.settings.batch_size
        batches = [examples[i : i + size] for i in range(0, len(examples), size)]
        for chunk in tqdm(batches, desc=desc, disable=not (self.settings.progress and self.progress)):
            model.zero_grad(set_to_none=True)
            inputs, labels = self.batch(chunk, processor)
            F.cross_entropy(model(**inputs).logits, labels).backward()
            for name, parameter in model.named_parameters():
                if parameter.grad is not None and name in totals:
                    totals[name] += parameter.grad.detach().pow(2)
        model.zero_grad(set_to_none=True)
        return {n: t / max(1, len(batches)) for n, t in totals.items()}

    def run(self, model: Any, processor: Any, data: ClassifierUnlearningData) -> Any:
        s = self.settings
        model.eval()
        full = sample(data.retain, s.full_fraction, self.rng) + list(data.forget)
        full_importance = self.importance(model, processor, full, "ssd: importance on D")
        forget_importance = self.importance(model, processor, list(data.forget), "ssd: importance on D_f")
        dampened = 0
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name not in forget_importance:
                    continue
                i_d, i_f = full_importance[name], forget_importance[name]
                selected = i_f > s.alpha * i_d
                factor = torch.clamp(s.dampening * i_d / i_f.clamp_min(1e-30), max=1.0)
                parameter[selected] = parameter[selected] * factor[selected]
                dampened += int(selected.sum())
        self.info["dampened_parameters"] = dampened
        return model
