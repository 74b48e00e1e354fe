"""What the LLM methods share: their training options and the forget/retain loop built on `mu_eval.training`.

A method that is a loss (GradAscent, NPO, DPO, UNDIAL, ...) only writes `forget_loss`; the objective is
always L = forget_weight * L_forget + retain_weight * L_retain (docs/methods.md), trained by the one loop in
`mu_eval.training`, optionally through LoRA adapters that are merged back afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from mu_eval.method import ConfiguredMethod, MethodError, MethodOptionError
from mu_eval.task import TextExample, UnlearningData
from mu_eval.training import (
    Batch,
    TrainConfig,
    answer_logits,
    collate,
    encode_examples,
    kl_to_reference,
    logprobs_from_logits,
    paired_batches,
    train,
)
from mu_eval.training_models import Reference, add_lora, merge_lora

RETAIN_LOSSES = ("nll", "kl", "none")


@dataclass
class FineTuneOptions:
    """Optimiser settings; defaults are open-unlearning's TOFU ones (batch 8 x accumulation 4, lr 1e-5,
    10 epochs, one warm-up epoch, weight decay 0.01). `steps` > 0 overrides the epoch count."""

    steps: int = 0
    epochs: float = 10.0
    lr: float = 1e-5
    batch_size: int = 8
    grad_accum_steps: int = 4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float | None = 1.0
    max_length: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        """Values no training can use are refused before the model loads (a negative step count would train
        for the epochs instead, a negative rate would learn the forget set), whatever default a method sets."""
        for name in ("steps", "epochs", "lr", "weight_decay", "warmup_ratio", "seed"):
            if getattr(self, name) < 0:
                raise MethodOptionError(f"{name}={getattr(self, name)!r}: must be at least 0")
        for name in ("batch_size", "grad_accum_steps", "max_length"):
            if getattr(self, name) < 1:
                raise MethodOptionError(f"{name}={getattr(self, name)!r}: must be at least 1")
        if self.warmup_ratio > 1:
            raise MethodOptionError(f"warmup_ratio={self.warmup_ratio!r}: must be at most 1")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise MethodOptionError(f"max_grad_norm={self.max_grad_norm!r}: must be above 0 (none: no clipping)")


@dataclass
class TrainOptions(FineTuneOptions):
    """Loss weights (gamma, alpha), the retain term, and LoRA (`lora_r` > 0 trains adapters, then merges)."""

    forget_weight: float = 1.0
    retain_weight: float = 1.0
    retain_loss: str = "nll"
    lora_r: int = 0
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = ()
    #: A checkpoint for the reference terms (NPO, DPO, UNDIAL, KL) instead of the model before unlearning,
    #: e.g. MLLMU-Bench's NPO "oracle" fine-tuned on the retain set; same tokenizer and vocabulary.
    reference_model: str = ""


def looks_local(name: str) -> bool:
    """A path rather than a hub id: absolute, relative with ./ or ../, or home-relative."""
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()


def epochs_to_steps(options: FineTuneOptions, epochs: float, examples: int) -> int:
    """Optimizer steps that `epochs` passes over `examples` take at the configured batch and accumulation."""
    per_step = max(options.batch_size * max(options.grad_accum_steps, 1), 1)
    return math.ceil(epochs * examples / per_step)


def optimizer_steps(options: FineTuneOptions, examples: int) -> int:
    """`steps` when set, else enough optimizer steps for `epochs` passes over `examples`."""
    if options.steps > 0:
        return options.steps
    return max(1, epochs_to_steps(options, options.epochs, examples))


def train_config(options: FineTuneOptions, steps: int, description: str, progress: bool = True) -> TrainConfig:
    return TrainConfig(
        steps=steps,
        lr=options.lr,
        batch_size=options.batch_size,
        weight_decay=options.weight_decay,
        warmup_steps=round(options.warmup_ratio * steps),
        max_grad_norm=options.max_grad_norm,
        seed=options.seed,
        description=description,
        grad_accum_steps=options.grad_accum_steps,
        progress=progress,
    )


def summarise_losses(losses: Sequence[float]) -> dict[str, Any]:
    first, last = (losses[0], losses[-1]) if losses else (None, None)
    return {"steps": len(losses), "first_loss": first, "last_loss": last}


class LLMMethod(ConfiguredMethod):
    """A forget loss plus the shared retain term, trained on paired forget/retain batches.

    Subclasses set `name`, `Options` (a `TrainOptions` subclass with their defaults) and `forget_loss`;
    `needs_reference` (or `uses_reference()`, for a method whose options decide) makes a frozen copy of the
    model before unlearning available to the loss.
    """

    kind = "llm"
    Options: ClassVar[type] = TrainOptions
    needs_reference: ClassVar[bool] = False
    #: Image+text examples train like text ones: every loss reads the model through `answer_logits`, which
    #: passes a batch's pixel values. A subclass that builds new examples from the forget prompts says False
    #: and why in `image_refusal` (`check_data_kind` stops the run with that reason).
    accepts_images: ClassVar[bool] = True
    image_refusal: ClassVar[str] = ""

    def uses_reference(self) -> bool:
        """Whether the forget loss reads the reference model (by default: the class's `needs_reference`)."""
        return self.needs_reference

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.settings.retain_loss not in RETAIN_LOSSES:
            raise MethodOptionError(
                f"method {self.name!r}: retain_loss={self.settings.retain_loss!r}; "
                f"choose {', '.join(RETAIN_LOSSES)}"
            )
        reference = self.settings.reference_model
        if reference and looks_local(reference) and not Path(reference).expanduser().exists():
            raise MethodOptionError(f"method {self.name!r}: reference_model={reference!r} does not exist")

    # -- what subclasses provide ---------------------------------------------------------------------------
    def forget_loss(self, model: Any, batch: Any, reference: Reference | None) -> torch.Tensor:
        raise NotImplementedError

    def forget_items(self, tokenizer: Any, forget: list[TextExample]) -> list[Any]:
        """Encoded forget examples (DPO pairs each with a refusal)."""
        return encode_examples(tokenizer, forget, self.settings.max_length)

    def collate_forget(self, items: Sequence[Any]) -> Any:
        return collate(items)

    def uses_retain(self) -> bool:
        """Whether the objective has a retain term (PDU's constraint always does)."""
        return self.settings.retain_loss != "none" and self.settings.retain_weight != 0

    def combine(self, forget: torch.Tensor, retain: torch.Tensor | None) -> torch.Tensor:
        """gamma * L_forget + alpha * L_retain; PDU puts its dual variable in alpha's place."""
        loss = self.settings.forget_weight * forget
        return loss if retain is None else loss + self.settings.retain_weight * retain

    def training_scope(self, model: Any, forget: list[Any], reference: Reference | None) -> AbstractContextManager:
        """Set-up that holds for the whole run and is undone after it (SURE's gradient mask)."""
        return nullcontext()

    def after_step(self, step: int, loss: float) -> None:
        """Called after each optimizer step (PDU's dual update)."""

    # -- the loop ------------------------------------------------------------------------------------------
    def retain_term(self, model: Any, batch: Batch, reference: Reference | None) -> torch.Tensor:
        logits = answer_logits(model, batch)
        if self.settings.retain_loss == "kl":
            assert reference is not None
            return kl_to_reference(logits, reference.logits(batch), batch)
        logp, mask = logprobs_from_logits(logits, batch)
        return -(logp.sum() / mask.sum().clamp(min=1))

    def unlearn(self, model: Any, tokenizer: Any, data: UnlearningData) -> Any:
        options = self.settings
        was_training = model.training
        if options.lora_r > 0:
            model = add_lora(
                model, options.lora_r, options.lora_alpha, options.lora_dropout, options.lora_targets
            )
        losses = self.fit(model, tokenizer, data)
        if options.lora_r > 0:
            model = merge_lora(model)
        self.info.update(summarise_losses(losses))
        return model.train(was_training)

    def fit(self, model: Any, tokenizer: Any, data: UnlearningData) -> list[float]:
        options = self.settings
        device = next(model.parameters()).device
        use_retain = self.uses_retain()
        if use_retain and not data.retain:
            raise MethodError(
                f"method {self.name!r} uses a retain term (retain_loss={options.retain_loss}) but the data "
                "has no retain set; pass retain examples or set retain_loss=none"
            )
        forget = self.forget_items(tokenizer, data.forget)
        retain = encode_examples(tokenizer, data.retain, options.max_length) if use_retain else []
        needs_reference = self.uses_reference() or (use_retain and options.retain_loss == "kl")
        if options.reference_model and not needs_reference:
            raise MethodError(f"method {self.name!r} has no reference term here, so reference_model="
                              f"{options.reference_model!r} would have no effect; drop it, or use a method with one "
                              "(npo, dpo, idk_dpo, undial, or retain_loss=kl)")
        reference = Reference(model, options.reference_model or None) if needs_reference else None
        stream = paired_batches(forget, retain, options.batch_size, options.seed, self.collate_forget)

        def loss_fn(_step: int) -> torch.Tensor:
            forget_batch, retain_batch = next(stream)
            forget_loss = self.forget_loss(model, forget_batch.to(device), reference)
            retain_loss = None
            if retain_batch is not None:
                retain_loss = self.retain_term(model, retain_batch.to(device), reference)
            return self.combine(forget_loss, retain_loss)

        config = train_config(options, optimizer_steps(options, len(forget)), f"unlearning ({self.name})",
                              self.progress)
        with self.training_scope(model, forget, reference):
            return train(model, loss_fn, config, on_step=self.after_step)
