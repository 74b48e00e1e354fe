"""An in-memory model is named by its weights: the checkpoints of one training loop differ in their reports and
never share answer-cache entries; the checksum used on accelerators matches an independent computation."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from support import FACTS, TRAINING_TEXTS, QATask

import mu_eval
from mu_eval import identity
from mu_eval.identity import tensor_checksum, weights_digest
from mu_eval.task import TextExample
from mu_eval.tiny import build_model, build_tokenizer
from mu_eval.training import TrainConfig, fine_tune

MASK = (1 << 64) - 1


def numpy_checksum(tensor: torch.Tensor) -> list[int]:
    """The documented formula in unsigned NumPy arithmetic (wrap-around defined), word by word."""
    raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    raw += b"\0" * (-len(raw) % 4)
    words = np.frombuffer(raw, dtype="<u4").astype(np.uint64)
    positions = np.arange(len(words), dtype=np.uint64)
    lanes = []
    with np.errstate(over="ignore"):
        for offset in identity.LANES:
            x = positions * np.uint64(identity._GOLDEN) + np.uint64(offset)
            x ^= x >> np.uint64(30)
            x *= np.uint64(identity._MIX[0])
            x ^= x >> np.uint64(27)
            x *= np.uint64(identity._MIX[1])
            x ^= x >> np.uint64(31)
            lanes.append(int((words * (x | np.uint64(1))).sum(dtype=np.uint64)))
    return lanes


TENSORS = {
    "float32": lambda: torch.randn(1001),
    "bfloat16 odd bytes": lambda: torch.randn(37, 5).to(torch.bfloat16),
    "transposed": lambda: torch.randn(12, 10).t(),
    "bool": lambda: torch.tensor([True, False, True]),
    "int64": lambda: torch.randint(-(2**62), 2**62, (9,)),
}


@pytest.mark.parametrize("kind", sorted(TENSORS))
@pytest.mark.parametrize("chunk", [identity.CHUNK_BYTES, 64])
def test_checksum_matches_an_independent_computation(kind, chunk, monkeypatch):
    monkeypatch.setattr(identity, "CHUNK_BYTES", chunk)  # 64: many chunks, the positions carried across them
    tensor = TENSORS[kind]()
    assert [v & MASK for v in tensor_checksum(tensor).tolist()] == numpy_checksum(tensor)


def test_checksum_on_cuda_is_the_same_number():
    if not torch.cuda.is_available():
        pytest.skip("not applicable here: no CUDA device")
    tensor = torch.randn(3, 1_000_003).to(torch.bfloat16)
    on_device = tensor_checksum(tensor.cuda())
    assert on_device.device.type == "cuda"
    assert [v & MASK for v in on_device.tolist()] == numpy_checksum(tensor)


def test_one_flipped_bit_changes_the_checksum():
    tensor = torch.randn(4096)
    flipped = tensor.clone()
    flipped.view(torch.int32)[2047] ^= 1 << 9
    assert all(a != b for a, b in zip(tensor_checksum(tensor).tolist(), tensor_checksum(flipped).tolist()))


def test_digest_of_host_weights_is_sha256_of_names_shapes_and_bytes():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    expected = hashlib.sha256(b"mu-eval weights v1\0")
    for name, tensor in sorted(model.state_dict().items()):
        expected.update(f"{name}\0float32\0{tuple(tensor.shape)}\0".encode())
        expected.update(b"sha256:" + hashlib.sha256(tensor.numpy().tobytes()).digest())
    assert weights_digest(model) == expected.hexdigest()
    assert weights_digest(model.to(torch.bfloat16)) != expected.hexdigest()  # the dtype is part of the identity


def test_two_checkpoints_of_one_loop_differ_and_share_no_cache_entry(tmp_path):
    tokenizer = build_tokenizer(TRAINING_TEXTS, vocab_size=600)
    model = build_model(len(tokenizer), tokenizer=tokenizer)
    examples = [TextExample(f"Question: {q}\nAnswer: ", a) for q, a in FACTS]
    options = {"progress": False, "use_cache": True, "cache_dir": tmp_path, "limit": 3}
    first = mu_eval.evaluate((model, tokenizer), [QATask()], step=0, tag="run-a", **options)
    fine_tune(model, tokenizer, examples, TrainConfig(steps=1, lr=1e-3, batch_size=4, progress=False))
    second = mu_eval.evaluate((model, tokenizer), [QATask()], step=1, tag="run-a", **options)
    again = mu_eval.evaluate((model, tokenizer), [QATask()], step=1, **options)

    hashes = [report.data["model"]["weights_sha256"] for report in (first, second, again)]
    assert hashes[0] != hashes[1] and hashes[1] == hashes[2] == weights_digest(model)
    assert (first.data["config"]["step"], second.data["config"]["step"]) == (0, 1)
    assert first.data["config"]["tag"] == "run-a" and again.data["config"]["tag"] is None
    assert second.data["engine"]["from_cache"] == 0  # the step-0 answers were not served for step 1
    assert again.data["engine"]["from_cache"] == again.data["engine"]["distinct"] > 0
    assert first.tasks["support_qa"]["items"]["nll"] != second.tasks["support_qa"]["items"]["nll"]


@pytest.mark.parametrize(("keyword", "value"), [("step", -1), ("step", 1.5), ("step", True), ("tag", 3)])
def test_bad_step_or_tag_is_refused_before_any_work(keyword, value):
    with pytest.raises(ValueError, match=f"{keyword} must be"):
        mu_eval.evaluate("./no-such-model", ["x"], **{keyword: value})
