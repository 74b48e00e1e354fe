"""Teacher-student methods: Bad Teacher (Chundawat et al. 2023) and SCRUB (Kurmanji et al. 2023)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mu_eval.task_data import ClassifierUnlearningData

from .base import ClassifierMethod, adam, distill_kl, frozen_copy, random_init_copy
from .data import sample, shuffled_batches


@dataclass
class BadTeacherOptions:
    """Spec defaults: T 1, 1 epoch, Adam lr 1e-4, 30% of D_r."""

    epochs: int = 1
    lr: float = 1e-4
    temperature: float = 1.0
    retain_fraction: float = 0.3
    batch_size: int = 256
    max_steps: int = 0
    seed: int = 0
    progress: bool = True


class BadTeacher(ClassifierMethod):
    """Bad Teacher: the student matches a random-init teacher on D_f and the original model on D_r.

    Loss per batch: KL(teacher_x || student_x) at temperature T (`kl_div(log_softmax(student), softmax(teacher))`
    as in the authors' code), the teacher being the incompetent one for forget rows and the competent one
    for retain rows; batchmean reduction.
    """

    name = "bad_teacher"
    description = "Bad Teacher: distil from a random teacher on forget data, the original on retain data"
    Options = BadTeacherOptions

    def run(self, model: Any, processor: Any, data: ClassifierUnlearningData) -> Any:
        s = self.settings
        competent = frozen_copy(model)
        incompetent = random_init_copy(model, s.seed + 1)
        optimizer = adam(model, s.lr)
        for _ in tqdm(range(s.epochs), desc=self.name, disable=not (s.progress and self.progress)):
            retain = sample(data.retain, s.retain_fraction, self.rng)
            pool = [(e, True) for e in data.forget] + [(e, False) for e in retain]
            for indices in shuffled_batches(len(pool), s.batch_size, self.rng):
                if not self.budget_left():
                    return model
                chosen = [pool[i] for i in indices]
                inputs, _ = self.batch([e for e, _ in chosen], processor)
                is_forget = torch.tensor([f for _, f in chosen], device=self.device)[:, None]
                with torch.no_grad():
                    teacher = torch.where(is_forget, incompetent(**inputs).logits, competent(**inputs).logits)
                student = F.log_softmax(model(**inputs).logits / s.temperature, dim=-1)
                loss = F.kl_div(student, F.softmax(teacher / s.temperature, dim=-1), reduction="batchmean")
                self.step(optimizer, loss, model)
        return model


@dataclass
class ScrubOptions:
    """Spec defaults: gamma 1, alpha 0.5, T 2, msteps 3, 10 epochs, Adam lr 5e-4.

    `retain_steps_per_epoch` / `forget_steps_per_epoch` 0 = a full pass over the set each epoch.
    """

    epochs: int = 10
    msteps: int = 3
    lr: float = 5e-4
    gamma: float = 1.0
    alpha: float = 0.5
    temperature: float = 2.0
    batch_size: int = 64
    forget_batch_size: int = 16
    retain_steps_per_epoch: int = 0
    forget_steps_per_epoch: int = 0
    seed: int = 0
    progress: bool = True


class Scrub(ClassifierMethod):
    """SCRUB: max-steps push the student away from the teacher on D_f (first `msteps` epochs); min-steps keep
    it close on D_r with gamma * CE + alpha * KL_T.

    The optimiser holds the STUDENT's parameters. EasyDUB's port builds it on the frozen teacher's, so the
    student never moves; a test checks that the weights change.
    """

    name = "scrub"
    description = "SCRUB: max-min distillation from the original model"
    Options = ScrubOptions

    def run(self, model: Any, processor: Any, data: ClassifierUnlearningData) -> Any:
        s = self.settings
        teacher = frozen_copy(model)
        optimizer = adam(model, s.lr)  # the student's parameters
        for epoch in tqdm(range(s.epochs), desc=self.name, disable=not (s.progress and self.progress)):
            if epoch < s.msteps:
                batches = shuffled_batches(len(data.forget), s.forget_batch_size, self.rng)
                for indices in batches[: s.forget_steps_per_epoch or None]:
                    inputs, _ = self.batch([data.forget[i] for i in indices], processor)
                    with torch.no_grad():
                        target = teacher(**inputs).logits
                    self.step(optimizer, -distill_kl(model(**inputs).logits, target, s.temperature), model)
            batches = shuffled_batches(len(data.retain), s.batch_size, self.rng)
            for indices in batches[: s.retain_steps_per_epoch or None]:
                inputs, labels = self.batch([data.retain[i] for i in indices], processor)
                with torch.no_grad():
                    target = teacher(**inputs).logits
                logits = model(**inputs).logits
                loss = s.gamma * F.cross_entropy(logits, labels) + s.alpha * distill_kl(logits, target, s.temperature)
                self.step(optimizer, loss, model)
        return model
