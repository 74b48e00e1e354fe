"""Fixtures: a tiny LLaVA checkpoint and MLLMU-Bench-schema data, built once per session."""

from __future__ import annotations

from pathlib import Path

import mllmu_helpers as h
import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models run fastest on one thread; two threads on a shared 2-core machine thrash."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def llava_checkpoint(tmp_path_factory) -> Path:
    return h.tiny_llava(tmp_path_factory.mktemp("llava") / "model")


@pytest.fixture(scope="session")
def mllmu_data(tmp_path_factory) -> Path:
    return h.write_dataset(tmp_path_factory.mktemp("mllmu-data"))
