"""Model identity: what makes two models' answers interchangeable (cache keys, the report's model section)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mu_eval.file_hashes import hash_file

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def hash_weight_files(directory: str | os.PathLike) -> str | None:
    """One hash over the names and contents of every weight file in a checkpoint directory."""
    root = Path(directory)
    if not root.is_dir():
        return None
    files = sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(hash_file(path).encode())
    return digest.hexdigest()


#: Bytes of a tensor checksummed per step: a few int64 temporaries of a quarter of this many words each, so
#: the peak memory the hash adds on the model's device stays small next to any model.
CHUNK_BYTES = 1 << 24
_GOLDEN = 0x9E3779B97F4A7C15
_MIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
#: Two lanes (independent weight sequences): a 128-bit checksum per tensor.
LANES = (0, 0x632BE59BD9B4E019)


def _signed(value: int) -> int:
    """A 64-bit pattern as the int64 torch stores (torch scalars must fit int64)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _shift_right(x: Any, bits: int) -> Any:
    """Logical right shift of int64 values (torch's `>>` on a signed type is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _mix(x: Any) -> Any:
    """splitmix64's finaliser: turns consecutive word positions into unrelated 64-bit weights."""
    x = x ^ _shift_right(x, 30)
    x = x * _signed(_MIX[0])
    x = x ^ _shift_right(x, 27)
    x = x * _signed(_MIX[1])
    return x ^ _shift_right(x, 31)


def tensor_checksum(tensor: Any) -> Any:
    """A tensor's 128-bit checksum, computed where the tensor lives (an int64 tensor of two lanes, on its device).

    The tensor's bytes are read as little-endian unsigned 32-bit words w_i (zero-padded to a whole word) and
    each lane is sum_i w_i * m_i mod 2^64, with m_i = mix(i * golden + lane) | 1 (odd). Changing any one word
    always changes both lanes (an odd multiplier is invertible mod 2^64); two or more changes cancel only by
    accident, about once in 2^128 for changes that are not chosen against the mix.
    """
    import torch

    data = tensor.detach()
    data = data.reshape(-1) if data.is_contiguous() else data.contiguous().reshape(-1)
    raw = data.view(torch.uint8)
    sums = torch.zeros(len(LANES), dtype=torch.int64, device=raw.device)
    for start in range(0, raw.numel(), CHUNK_BYTES):
        chunk = raw[start : start + CHUNK_BYTES]
        if chunk.numel() % 4:
            chunk = torch.cat([chunk, chunk.new_zeros(4 - chunk.numel() % 4)])
        words = chunk.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
        positions = torch.arange(start // 4, start // 4 + words.numel(), dtype=torch.int64, device=raw.device)
        spread = positions * _signed(_GOLDEN)
        for lane, offset in enumerate(LANES):
            weights = _mix(spread + _signed(offset)) | 1
            sums[lane] += (words * weights).sum()
    return sums


def _tensor_record(tensor: Any) -> Any:
    """What names one tensor's content: the SHA-256 of its bytes when it is in host memory (hashlib reads them
    in place), its `tensor_checksum` computed on the device otherwise (an int64 tensor, read back later)."""
    import torch

    data = tensor.detach()
    if data.device.type != "cpu":
        return tensor_checksum(data)
    data = data.contiguous().reshape(-1).view(torch.uint8)
    return b"sha256:" + hashlib.sha256(data.numpy()).digest()


def weights_digest(model: Any) -> str | None:
    """The identity of an in-memory model's weights: SHA-256 over each parameter's and buffer's name, dtype,
    shape and content record: the SHA-256 of its bytes for a tensor in host memory, a 128-bit checksum
    (`tensor_checksum`) computed where it lives for a tensor on an accelerator.

    On an accelerator only 16 bytes per tensor reach the host, so a 7B model on a GPU is not copied to memory
    to be named. That checksum is an identity, not a cryptographic hash: it tells the checkpoints of a
    training run apart (any changed weight changes it) and does not resist weights crafted to collide. The
    same weights on a CPU and on a GPU get different identities, as their answers differ in the last bits.
    None when some weight is not materialised (a meta tensor).
    """
    import torch

    tensors = sorted((name, value) for name, value in model.state_dict(keep_vars=True).items()
                     if isinstance(value, torch.Tensor))  # quantisation libraries may keep other state there
    if any(tensor.device.type == "meta" for _, tensor in tensors):
        return None
    with torch.no_grad():
        records = [_tensor_record(tensor) for _, tensor in tensors]  # device checksums queued, then read back
        records = [r if isinstance(r, bytes) else b"sum128:" + r.cpu().numpy().tobytes() for r in records]
    digest = hashlib.sha256(b"mu-eval weights v1\0")
    for (name, tensor), record in zip(tensors, records):
        digest.update(f"{name}\0{str(tensor.dtype).removeprefix('torch.')}\0{tuple(tensor.shape)}\0".encode())
        digest.update(record)
    return digest.hexdigest()


def identity_key(identity: dict[str, Any]) -> str:
    """A stable hex key for an identity dictionary (order-independent)."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
