"""Raw classifier inputs per modality: normalising dataset values, hashing them, and batching them.

Datasets store the same input in several shapes (a PIL image or undecoded `{"bytes", "path"}`; audio as
`{"array", "sampling_rate"}`, WAV bytes or a path; video as a list of frames or one array). Every shape is
normalised once, so that one input has one content hash (the request key) whatever file it came from, and
so that the processor sees one form.
"""

from __future__ import annotations

import hashlib
import io
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODALITIES = ("image", "text", "audio", "video", "image_text")


class InputError(ValueError):
    """A dataset value that cannot be read as an input of the expected modality."""


# -- normalisation -------------------------------------------------------------------------------------------
def to_rgb_image(value: Any) -> Any:
    """A PIL RGB image from a PIL image, an HxW(xC) array, undecoded `{"bytes", "path"}` or a file path."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value if value.mode == "RGB" else value.convert("RGB")
    if isinstance(value, np.ndarray):
        array = value
        if array.dtype != np.uint8:
            array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return Image.fromarray(array).convert("RGB")
    if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        source = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
        return Image.open(source).convert("RGB")
    if isinstance(value, str | Path):
        return Image.open(value).convert("RGB")
    raise InputError(f"cannot read an image from {type(value).__name__}")


def read_wav(data: bytes | str | Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the rate of a PCM WAV file (stdlib only; no torchcodec needed)."""
    handle = wave.open(io.BytesIO(data) if isinstance(data, bytes) else str(data), "rb")
    with handle:
        rate, width, channels = handle.getframerate(), handle.getsampwidth(), handle.getnchannels()
        frames = handle.readframes(handle.getnframes())
    dtypes = {1: np.uint8, 2: np.int16, 4: np.int32}
    if width not in dtypes:
        raise InputError(f"unsupported WAV sample width {width}")
    samples = np.frombuffer(frames, dtype=dtypes[width]).astype(np.float32)
    samples = (samples - 128.0) / 128.0 if width == 1 else samples / float(2 ** (8 * width - 1))
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples.astype(np.float32), rate


def to_audio(value: Any) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sampling rate) from the shapes `datasets` uses for audio."""
    if isinstance(value, tuple) and len(value) == 2:
        return np.asarray(value[0], dtype=np.float32), int(value[1])
    if hasattr(value, "get_all_samples"):  # datasets >= 4 (torchcodec AudioDecoder)
        samples = value.get_all_samples()
        data = np.asarray(samples.data, dtype=np.float32)
        return (data.mean(axis=0) if data.ndim == 2 else data), int(samples.sample_rate)
    if isinstance(value, dict):
        if value.get("array") is not None:
            array = np.asarray(value["array"], dtype=np.float32)
            return (array.mean(axis=0) if array.ndim == 2 else array), int(value["sampling_rate"])
        if value.get("bytes"):
            return read_wav(value["bytes"])
        if value.get("path"):
            return read_wav(value["path"])
    if isinstance(value, str | Path):
        return read_wav(value)
    raise InputError(f"cannot read audio from {type(value).__name__}")


def to_frames(value: Any) -> tuple[np.ndarray, ...]:
    """Video frames as HxWx3 uint8 arrays from a list of images/arrays, a TxHxWxC array or a .npy path."""
    if isinstance(value, str | Path):
        value = np.load(value)
    if isinstance(value, np.ndarray) and value.ndim == 4:
        value = list(value)
    if not isinstance(value, Sequence) or isinstance(value, str) or not len(value):
        raise InputError(f"cannot read video frames from {type(value).__name__}")
    return tuple(np.asarray(to_rgb_image(frame)) for frame in value)


def normalise(modality: str, value: Any) -> Any:
    """The canonical form of one input: what is hashed, stored and handed to the processor."""
    if modality == "image":
        return to_rgb_image(value)
    if modality == "text":
        if not isinstance(value, str):
            raise InputError(f"text input must be a string, got {type(value).__name__}")
        return value
    if modality == "audio":
        return to_audio(value)
    if modality == "video":
        return to_frames(value)
    if modality == "image_text":
        left, right, text = value
        return (to_rgb_image(left), to_rgb_image(right), str(text))
    raise InputError(f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}")


def content_hash(modality: str, value: Any) -> str:
    """SHA-256 of a normalised input's content (pixels, samples, characters), prefixed by its modality."""
    digest = hashlib.sha256(modality.encode())

    def feed(part: Any) -> None:
        if isinstance(part, str):
            digest.update(b"s" + part.encode("utf-8"))
        elif isinstance(part, np.ndarray):
            digest.update(f"a{part.dtype}{part.shape}".encode() + np.ascontiguousarray(part).tobytes())
        elif isinstance(part, tuple):
            for item in part:
                feed(item)
        elif isinstance(part, int | float):
            digest.update(f"n{part!r}".encode())
        else:  # a PIL image
            digest.update(f"i{part.mode}{part.size}".encode() + part.tobytes())

    feed(value)
    return digest.hexdigest()


# -- batching ------------------------------------------------------------------------------------------------
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
