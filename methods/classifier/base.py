"""What the classifier methods share: typed options, the train/eval bracket, a frozen copy, and KL losses."""

from __future__ import annotations

import copy
import random
import time
from typing import Any

import torch
import torch.nn.functional as F

from mu_eval.method import ConfiguredMethod
from mu_eval.task_data import ClassifierUnlearningData

from .data import as_classifier_data, collate, ensure_processor


class ClassifierMethod(ConfiguredMethod):
    """Base of the MU-Bench / SalUn-protocol methods: `unlearn(model, processor, data) -> model`.

    Subclasses implement `run`; this wrapper converts the data, seeds, puts the model in train mode for the
    run and back in eval mode after, and records wall time and the last losses in `self.info`.
    """

    kind = "classifier"

    def unlearn(self, model: Any, tokenizer: Any, data: Any) -> Any:
        examples = as_classifier_data(data)
        processor = ensure_processor(tokenizer, model)
        seed = int(getattr(self.settings, "seed", 0))
        torch.manual_seed(seed)
        self.rng = random.Random(seed)
        self.device = next(model.parameters()).device
        self.losses: list[float] = []
        started = time.perf_counter()
        model.train()
        try:
            result = self.run(model, processor, examples)
        finally:
            model.eval()
        result = model if result is None else result
        result.eval()
        self.info.update(
            unlearning_seconds=time.perf_counter() - started,
            steps=len(self.losses),
            last_loss=self.losses[-1] if self.losses else None,
            forget=len(examples.forget),
            retain=len(examples.retain),
        )
        return result

    def run(self, model: Any, processor: Any, data: ClassifierUnlearningData) -> Any:
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------------------------
    def budget_left(self) -> bool:
        """False once `max_steps` (when the method has it and it is > 0) optimizer steps were taken."""
        limit = getattr(self.settings, "max_steps", 0)
        return not limit or len(self.losses) < limit

    def batch(self, examples: list, processor: Any, labels: list[int] | None = None) -> tuple[dict, torch.Tensor]:
        return collate(examples, processor, self.device, labels)

    def step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, model: Any,
             gradient_mask: dict[str, torch.Tensor] | None = None) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if gradient_mask is not None:
            for name, parameter in model.named_parameters():
                if parameter.grad is not None and name in gradient_mask:
                    parameter.grad.mul_(gradient_mask[name])
        optimizer.step()
        self.losses.append(float(loss.detach()))


def frozen_copy(model: Any) -> Any:
    """A detached, eval-mode copy of the model as it is now (teachers, the SCRUB reference)."""
    clone = copy.deepcopy(model)
    clone.eval()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


def random_init_copy(model: Any, seed: int) -> Any:
    """A frozen, randomly initialised model of the same configuration (Bad Teacher's incompetent teacher)."""
    torch.manual_seed(seed)
    clone = type(model)._from_config(model.config).to(next(model.parameters()).device)
    clone.eval()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher_T || student_T) * T^2, summed over classes and averaged over the batch (SCRUB's DistillKL)."""
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    teacher = F.softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(log_student, teacher, reduction="sum") * temperature**2 / student_logits.shape[0]


def sgd(model: Any, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=momentum,
                           weight_decay=weight_decay)


def adam(model: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
