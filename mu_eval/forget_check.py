"""Did the method unlearn anything? The forget set's answer loss before and after the method, in the report's
method section and, when it did not rise, in a one-line warning: a method whose settings do nothing on this
model (too few steps, too small a rate, a layer that is not there) must not pass for one that worked."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from mu_eval.task_data import ClassifierExample, TextExample

#: Forget examples the check scores (the first ones): enough for a stable mean, cheap next to any training.
CHECKED_EXAMPLES = 64
#: The least change of the mean answer loss (nats per token) that counts: about a 5% change of the answers'
#: mean token probability. A larger loss needs a 1% change; below either it is "unchanged".
MINIMUM_CHANGE = 0.05
RELATIVE_CHANGE = 0.01


def forget_set_loss(model: Any, tokenizer: Any, examples: Sequence[Any], max_length: int = 512) -> float | None:
    """Mean per-token NLL of the answers of the first text examples given their prompts, or the mean
    cross-entropy of the first labelled classifier examples (None for other examples)."""
    import torch

    from mu_eval.training import collate, encode_examples, token_logprobs

    if not hasattr(model, "parameters") or tokenizer is None:
        return None
    labelled = [e for e in examples if isinstance(e, ClassifierExample)][:CHECKED_EXAMPLES]
    if labelled:
        return classifier_loss(model, tokenizer, labelled)
    texts = [e for e in examples if isinstance(e, TextExample)][:CHECKED_EXAMPLES]
    if not texts:
        return None
    encoded = encode_examples(tokenizer, texts, max_length)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for begin in range(0, len(encoded), 8):
                batch = collate(encoded[begin : begin + 8])
                batch.input_ids, batch.attention_mask, batch.labels = (
                    batch.input_ids.to(device), batch.attention_mask.to(device), batch.labels.to(device))
                logp, mask = token_logprobs(model, batch)
                total -= float(logp.sum())
                count += int(mask.sum())
    finally:
        model.train(was_training)
    return total / count if count else None


def classifier_loss(model: Any, processor: Any, examples: Sequence[ClassifierExample]) -> float | None:
    """Mean cross-entropy of the examples' labels, through the backend's processor (None with another one)."""
    import torch

    from mu_eval.backends.modality_processor import ModalityProcessor

    if not isinstance(processor, ModalityProcessor):
        return None
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        with torch.no_grad():
            for begin in range(0, len(examples), 16):
                chunk = examples[begin : begin + 16]
                inputs = {k: v.to(device) for k, v in processor([e.inputs for e in chunk]).items()}
                labels = torch.tensor([e.label for e in chunk], device=device)
                logits = model(**inputs).logits.float()
                total += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
    finally:
        model.train(was_training)
    return total / len(examples)


def checked_count(examples: Sequence[Any]) -> int:
    """How many forget examples `forget_set_loss` scores."""
    labelled = sum(isinstance(e, ClassifierExample) for e in examples)
    return min(labelled or sum(isinstance(e, TextExample) for e in examples), CHECKED_EXAMPLES)


def verdict(before: float, after: float) -> str:
    """raised (what unlearning does), unchanged, lowered (the wrong way: the model knows the set better), or
    not a number (the training diverged)."""
    if not math.isfinite(after):
        return "not a number"  # the unlearned model's outputs overflowed: it is broken, not unlearned
    threshold = max(MINIMUM_CHANGE, RELATIVE_CHANGE * abs(before))
    if after - before >= threshold:
        return "raised"
    if before - after >= threshold:
        return "lowered"
    return "unchanged"


def forget_loss_section(method: str, before: float | None, after: float | None, examples: int) -> dict[str, Any]:
    """The method section's `forget_loss`, warning when the method did not raise it."""
    if before is None or after is None:
        return {"before": None, "after": None, "examples": 0, "verdict": None}
    result = verdict(before, after)
    if result != "raised":
        what = {"unchanged": "left the forget-set loss where it was",
                "lowered": "lowered the forget-set loss (the wrong way: the model fits the forget set better)",
                "not a number": "left a model whose forget-set loss is not a number (the training diverged; every "
                                "metric of this model is meaningless)"}[result]
        warnings.warn(f"method {method!r} {what}: mean answer loss {before:.4f} before, {after:.4f} after, on "
                      f"{examples} forget examples; its settings may do nothing on this model (docs/methods.md "
                      "gives settings for small models)", stacklevel=3)
    return {"before": before, "after": after if math.isfinite(after) else None, "examples": examples,
            "verdict": result}
