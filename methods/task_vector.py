"""Task-vector negation: fine-tune a copy on the forget set, then step back: theta - alpha (theta_ft - theta)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mu_eval.method import ConfiguredMethod
from mu_eval.task import UnlearningData
from mu_eval.training import fine_tune

from .base import FineTuneOptions, optimizer_steps, summarise_losses, train_config


@dataclass
class TaskVectorOptions(FineTuneOptions):
    """MUSE: theta_ft is 10 epochs at lr 1e-5 on the forget set; alpha 5."""

    alpha: float = 5.0


def reinforce(
    model: Any, tokenizer: Any, data: UnlearningData, options: FineTuneOptions, progress: bool = True
) -> tuple[Any, list[float]]:
    """A copy of `model` fine-tuned further on the forget set (the 'reinforced' model of WHP and task vectors)."""
    reinforced = copy.deepcopy(model)
    config = train_config(options, optimizer_steps(options, len(data.forget)), "reinforcing on forget", progress)
    losses = fine_tune(reinforced, tokenizer, data.forget, config, max_length=options.max_length)
    return reinforced.eval(), losses


def floating_tensors(model: Any) -> dict[str, torch.Tensor]:
    """Parameters and floating-point buffers, each shared tensor once (tied embeddings must move once)."""
    tensors = dict(model.named_parameters())
    tensors.update((name, b) for name, b in model.named_buffers() if b.is_floating_point())
    return tensors


class TaskVector(ConfiguredMethod):
    """theta <- theta - alpha (theta_ft - theta); integer buffers are left alone."""

    name = "task_vector"
    kind = "llm"
    description = "Task-vector negation: subtract alpha times the forget fine-tuning direction."
    Options: ClassVar[type] = TaskVectorOptions
    #: The reinforced copy is fine-tuned by `mu_eval.training.fine_tune`, which trains on pictures too.
    accepts_images: ClassVar[bool] = True

    def unlearn(self, model: Any, tokenizer: Any, data: UnlearningData) -> Any:
        reinforced, losses = reinforce(model, tokenizer, data, self.settings, self.progress)
        alpha = self.settings.alpha
        tuned = floating_tensors(reinforced)
        with torch.no_grad():
            for name, tensor in floating_tensors(model).items():
                tensor.sub_(alpha * (tuned[name].to(tensor.dtype) - tensor))
        del reinforced, tuned
        self.info.update(summarise_losses(losses))
        return model
