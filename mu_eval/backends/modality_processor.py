"""Batching normalised inputs (`mu_eval.inputs`) of one modality into a classifier's keyword tensors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mu_eval.inputs import MODALITIES, InputError


def sample_frames(frames: Sequence[np.ndarray], count: int | None) -> list[np.ndarray]:
    """`count` frames evenly spaced over the clip (all of them when `count` is None or the clip is that long)."""
    if not count or len(frames) == count:
        return list(frames)
    positions = np.linspace(0, len(frames) - 1, num=count).round().astype(int)
    return [frames[i] for i in positions]


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return samples
    from math import gcd

    from scipy.signal import resample_poly

    factor = gcd(rate, target)
    return resample_poly(samples, target // factor, rate // factor).astype(np.float32)


class ModalityProcessor:
    """Turns a list of normalised inputs of one modality into the model's keyword tensors.

    Wraps the Hugging Face processor (tokenizer, image processor, feature extractor or ViLT processor);
    this is what the classifier backend exposes as its `tokenizer`, and what unlearning methods receive.
    """

    def __init__(self, processor: Any, modality: str, max_length: int = 128, num_frames: int | None = None) -> None:
        if modality not in MODALITIES:
            raise InputError(f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}")
        self.processor = processor
        self.modality = modality
        self.max_length = max_length
        self.num_frames = num_frames

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    def save_pretrained(self, path: str | Path) -> None:
        self.processor.save_pretrained(path)

    def text_length(self, text: str) -> int:
        return min(len(self.tokenizer(text)["input_ids"]), self.max_length)

    def __call__(self, inputs: Sequence[Any]) -> dict[str, Any]:
        """Keyword tensors for a batch of normalised inputs (padding marked by attention/pixel masks)."""
        if self.modality == "text":
            return dict(self.tokenizer(list(inputs), padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt"))
        if self.modality == "image":
            return {"pixel_values": self.processor(list(inputs), return_tensors="pt")["pixel_values"]}
        if self.modality == "video":
            clips = [sample_frames(frames, self.num_frames) for frames in inputs]
            return {"pixel_values": self.processor(clips, return_tensors="pt")["pixel_values"]}
        if self.modality == "audio":
            target = int(getattr(self.processor, "sampling_rate", 16000))
            arrays = [resample(samples, rate, target) for samples, rate in inputs]
            encoded = self.processor(arrays, sampling_rate=target, padding=True, return_attention_mask=True,
                                     return_tensors="pt")
            return {k: v for k, v in encoded.items() if k in ("input_values", "input_features", "attention_mask")}
        return self._image_text(inputs)

    def _image_text(self, inputs: Sequence[Any]) -> dict[str, Any]:
        """NLVR2 for ViLT: both images of every pair through one image-processor call (common padding)."""
        import torch

        image_processor = getattr(self.processor, "image_processor", None)
        if image_processor is None:
            raise InputError("an image+text classifier needs a processor with an image_processor and a tokenizer")
        count = len(inputs)
        images = [pair[0] for pair in inputs] + [pair[1] for pair in inputs]
        pixels = image_processor(images, return_tensors="pt")
        text = self.tokenizer([pair[2] for pair in inputs], padding=True, truncation=True,
                              max_length=self.max_length, return_tensors="pt")
        batch = dict(text)
        batch["pixel_values"] = torch.stack([pixels["pixel_values"][:count], pixels["pixel_values"][count:]], 1)
        if "pixel_mask" in pixels:
            batch["pixel_mask"] = torch.stack([pixels["pixel_mask"][:count], pixels["pixel_mask"][count:]], 1)
        return batch
