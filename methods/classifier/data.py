"""Labelled forget/retain examples for classifier unlearning, and their batches.

MU-Bench tasks give `ClassifierUnlearningData` from `Task.unlearning_data(ctx)`: every example is a
normalised raw input (image, text, audio, clip, image pair + sentence) with its label and content hash. The
method batches them itself through the processor it receives (`backend.tokenizer`, a `ModalityProcessor`),
so one data object serves every modality and the tensors match what evaluation feeds the model.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from mu_eval.backends.classification import detect_modality, wrap_processor
from mu_eval.backends.modality_processor import ModalityProcessor
from mu_eval.method import MethodError
from mu_eval.task_data import ClassifierExample, ClassifierUnlearningData, UnlearningData


def as_classifier_data(data: UnlearningData) -> ClassifierUnlearningData:
    """Accept the merged `UnlearningData` that `apply_method` builds, as long as it holds classifier examples."""
    for part in (data.forget, data.retain, data.holdout):
        bad = next((e for e in part if not isinstance(e, ClassifierExample)), None)
        if bad is not None:
            raise MethodError(
                f"classifier methods need labelled classifier examples, got {type(bad).__name__}; "
                "use a MU-Bench classification task (e.g. mubench_cifar100) with --backend classifier"
            )
    if not data.forget:
        raise MethodError("the forget set is empty")
    if isinstance(data, ClassifierUnlearningData):
        return data
    return ClassifierUnlearningData(list(data.forget), list(data.retain), list(data.holdout))


def ensure_processor(processor: Any, model: Any) -> ModalityProcessor:
    """The backend's `ModalityProcessor`, or one wrapped around a plain HF processor for library use."""
    if isinstance(processor, ModalityProcessor):
        return processor
    modality = detect_modality(model.config)
    if modality == "seq2seq":
        raise MethodError("classifier methods need a classification model, not a seq2seq generator")
    return wrap_processor(processor, modality, model.config)


def collate(examples: Sequence[ClassifierExample], processor: ModalityProcessor, device: Any,
            labels: Sequence[int] | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Model keyword tensors and a label tensor (the examples' own labels unless `labels` is given)."""
    inputs = processor([e.inputs for e in examples])
    inputs = {k: v.to(device) for k, v in inputs.items()}
    chosen = [e.label for e in examples] if labels is None else list(labels)
    return inputs, torch.tensor(chosen, dtype=torch.long, device=device)


def shuffled_batches(count: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of index batches in a seeded random order."""
    order = list(range(count))
    rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, count, batch_size)]


def endless_batches(count: int, batch_size: int, rng: random.Random) -> Iterator[list[int]]:
    """Index batches forever, reshuffled every epoch (pairs retain batches with forget batches)."""
    if count == 0:
        raise MethodError("this method needs retain examples and the retain set is empty")
    while True:
        yield from shuffled_batches(count, batch_size, rng)


def sample(examples: Sequence[ClassifierExample], fraction: float, rng: random.Random) -> list[ClassifierExample]:
    """A seeded sample of `fraction` of the examples (at least one when there are any)."""
    if fraction >= 1.0:
        return list(examples)
    size = max(1, round(len(examples) * fraction)) if examples else 0
    return rng.sample(list(examples), size)
