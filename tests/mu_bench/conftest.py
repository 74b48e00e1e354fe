"""Fixtures: tiny MU-Bench checkpoints and data files, built once per session."""

from __future__ import annotations

from pathlib import Path

import mubench_helpers as h
import pytest
from mubench_helpers import CIFAR_DF, CIFAR_TEST, CIFAR_TRAIN, cifar_rows


@pytest.fixture(scope="session")
def cifar_data(tmp_path_factory) -> dict[str, Path]:
    """CIFAR-100-schema parquet files (img as an Image feature, fine_label) and a deletion index file."""
    from datasets import Features, Image, Value

    root = tmp_path_factory.mktemp("cifar100")
    features = Features({"img": Image(), "fine_label": Value("int64"), "coarse_label": Value("int64")})
    h.write_parquet(cifar_rows(0, CIFAR_TRAIN), root / "data" / "cifar100" / "train.parquet", features)
    h.write_parquet(cifar_rows(1000, CIFAR_TEST), root / "data" / "cifar100" / "test.parquet", features)
    h.write_index_file(CIFAR_DF, root / "cifar100.txt")
    return {"data": root / "data", "df_file": root / "cifar100.txt", "root": root}


@pytest.fixture(scope="session")
def random_vit(tmp_path_factory) -> Path:
    return h.vit(tmp_path_factory.mktemp("vit") / "model", num_labels=100)


@pytest.fixture(scope="session")
def trained_vit(tmp_path_factory, cifar_data) -> Path:
    """A tiny ViT that has memorised the tiny CIFAR-100 training split (forget and retain rows alike)."""
    import torch
    from transformers import ViTForImageClassification, ViTImageProcessor

    directory = h.vit(tmp_path_factory.mktemp("vit-trained") / "model", num_labels=100, seed=1)
    model = ViTForImageClassification.from_pretrained(directory)
    processor = ViTImageProcessor.from_pretrained(directory)
    rows = cifar_rows(0, CIFAR_TRAIN)
    batches = []
    for begin in range(0, len(rows), 8):
        chunk = rows[begin : begin + 8]
        pixels = processor([r["img"] for r in chunk], return_tensors="pt")["pixel_values"]
        batches.append(({"pixel_values": pixels}, torch.tensor([r["fine_label"] for r in chunk])))
    assert h.memorise(model, batches, steps=120) == 1.0
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def cifar_unlearning(trained_vit, cifar_data):
    """The memorised model, its processor, and D_f / D_r from the task's own `unlearning_data`; one per test module,
    as the methods under test change the model they are given."""
    from mu_eval.backends.classification import ClassifierBackend
    from mu_eval.data import load_rows
    from mu_eval.plugins import get_registry
    from mu_eval.task import TaskContext

    backend = ClassifierBackend.from_pretrained(str(trained_vit), device="cpu")
    task = get_registry().task("mubench_cifar100", df_file=str(cifar_data["df_file"]), ratio="6")
    ctx = TaskContext(load=lambda spec: load_rows(spec, cifar_data["data"]), chat=str, uses_chat_template=False,
                      options=dict(task.options))
    data = task.unlearning_data(ctx)
    assert len(data.forget) == 6 and len(data.retain) == 18
    return backend.torch_model, backend.tokenizer, data
