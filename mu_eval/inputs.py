"""Raw model inputs other than text (pictures, audio, video, image pairs): normalised, hashed, stored per run.

Datasets store the same input in several shapes (a PIL image or undecoded `{"bytes", "path"}`; audio as
`{"array", "sampling_rate"}`, WAV bytes or a path; video as a list of frames or one array). Every shape is
normalised once, so that one input has one content hash whatever file it came from, and so that the
processor sees one form.

Requests must be small hashable values, so a `Classify` or `VisualGenerate` request names its inputs by
content hash; the run's `InputStore` (which tasks fill through `TaskContext.inputs` and backends read
through `Backend.inputs`) holds the normalised inputs under those hashes. The answer cache is thus keyed by
an input's content, never by a row number that another data file could give another meaning.
"""

from __future__ import annotations

import hashlib
import io
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class StoredInput:
    """A normalised input with its content hash; equal (and hashed) by modality and hash alone."""

    modality: str
    digest: str
    value: Any = field(compare=False, hash=False, repr=False)


def prepare_input(modality: str, raw: Any) -> StoredInput:
    """Normalise and hash one raw dataset value (or pass a `StoredInput` through)."""
    if isinstance(raw, StoredInput):
        if raw.modality != modality:
            raise InputError(f"a {raw.modality} input where a {modality} input is expected")
        return raw
    normalised = normalise(modality, raw)
    return StoredInput(modality, content_hash(modality, normalised), normalised)


class InputStore:
    """The normalised inputs of one run, by content hash: what tasks register and backends read back."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def register(self, modality: str, raw: Any) -> StoredInput:
        stored = prepare_input(modality, raw)
        self._values.setdefault(stored.digest, stored.value)
        return stored

    def get(self, digest: str) -> Any:
        try:
            return self._values[digest]
        except KeyError:
            raise InputError(f"input {digest[:12]} is not in this run's input store (requests that name inputs "
                             "must be built with the run's store: TaskContext.inputs)") from None

    def __contains__(self, digest: object) -> bool:
        return digest in self._values

    def __len__(self) -> int:
        return len(self._values)
