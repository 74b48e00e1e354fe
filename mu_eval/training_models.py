"""The models a training run keeps beside the one it trains: the frozen reference that NPO, DPO, KL and UNDIAL
terms compare against, and the LoRA adapters a method or the relearning attack trains instead of the weights."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

from mu_eval.backends.dtype_keyword import dtype_argument
from mu_eval.method import MethodError
from mu_eval.training import Batch, answer_logits


def frozen_copy(model: Any) -> Any:
    """A deep copy in eval mode with gradients off: the model before unlearning, for reference terms."""
    copied = copy.deepcopy(model).eval()
    copied.requires_grad_(False)
    return copied


def is_peft_model(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


class Reference:
    """Logits of the model as it was before unlearning (NPO, DPO, KL and UNDIAL terms), or of the checkpoint
    at `path` when one is given (loaded once, frozen, in the model's class, dtype and device).

    Without a path, a peft-wrapped model serves as its own reference with its adapters disabled, so LoRA runs
    keep one copy of the weights in memory; otherwise a frozen deep copy is made once.
    """

    def __init__(self, model: Any, path: str | None = None) -> None:
        self.shared = path is None and is_peft_model(model)
        if path is not None:
            self.model = load_reference(model, path)
        else:
            self.model = model if self.shared else frozen_copy(model)

    @torch.no_grad()
    def logits(self, batch: Batch) -> torch.Tensor:
        if not self.shared:
            return answer_logits(self.model, batch)
        was_training = self.model.training
        self.model.eval()  # no dropout in the reference's answers
        try:
            with self.model.disable_adapter():
                return answer_logits(self.model, batch)
        finally:
            self.model.train(was_training)


def load_reference(model: Any, path: str) -> Any:
    """The checkpoint at `path` as a frozen model of `model`'s class, dtype and device; its output vocabulary
    must be the model's, or the log-ratios would compare different tokens."""
    base = model.get_base_model() if is_peft_model(model) else model
    parameter = next(base.parameters())
    try:
        reference = type(base).from_pretrained(path, **dtype_argument(parameter.dtype))
    except (OSError, ValueError) as error:
        raise MethodError(f"reference_model={path!r}: {str(error).splitlines()[0]}") from None
    head, reference_head = base.get_output_embeddings(), reference.get_output_embeddings()
    if head is not None and reference_head is not None and head.weight.shape != reference_head.weight.shape:
        raise MethodError(f"reference_model={path!r} has an output vocabulary of {reference_head.weight.shape[0]} "
                          f"tokens, the model {head.weight.shape[0]}: they must share a tokenizer")
    reference.to(parameter.device).eval()
    reference.requires_grad_(False)
    return reference


def add_lora(
    model: Any, r: int, alpha: float, dropout: float = 0.0, targets: str | Sequence[str] | None = None
) -> Any:
    """Wrap `model` with fresh LoRA adapters (peft); only the adapters are trainable afterwards.

    `targets` is a list of module names or peft's "all-linear". Without it peft picks them by model type;
    for one it has no default for (LLaVA) that is a one-line error naming the option, not peft's traceback."""
    import warnings

    from peft import LoraConfig, get_peft_model

    target_modules = targets if isinstance(targets, str) else (list(targets) if targets else None)
    config = LoraConfig(
        r=r, lora_alpha=alpha,  # type: ignore[arg-type]  # peft annotates int, and scales by any number
        lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM",
    )
    try:
        with warnings.catch_warnings():
            # peft reads the model's deprecated `is_gradient_checkpointing`; the warning is peft's to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return get_peft_model(model, config)
    except ValueError as error:
        if targets or "target_modules" not in str(error):
            raise
        kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise MethodError(f"peft has no default LoRA targets for {kind!r} models; name them with "
                          "lora_targets, e.g. lora_targets=q_proj+k_proj+v_proj+o_proj+gate_proj+up_proj+down_proj"
                          ) from None


def merge_lora(model: Any) -> Any:
    """Fold the adapters into the base weights and return the plain transformers model."""
    return model.merge_and_unload()
