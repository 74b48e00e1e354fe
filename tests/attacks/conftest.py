"""Tiny models for the attack tests: one fine-tuned on the member facts, one "probe" model that refuses
forget questions without context but answers them in context. Trained once per session, one thread
each (the machines are small and shared)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
from attack_support import MEMBERS, examples, load, probe_training_examples, train_on

from mu_eval.tiny import save


@contextlib.contextmanager
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def trained_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """The random tiny model fine-tuned until it has memorised the member facts (not the holdout ones)."""
    with one_thread():
        model, tokenizer = load(tiny_checkpoint)
        train_on(model, tokenizer, examples(MEMBERS), steps=60, lr=3e-3, batch_size=5)
        return save(model.eval(), tokenizer, tmp_path_factory.mktemp("trained") / "model")


@pytest.fixture(scope="session")
def probe_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    with one_thread():
        model, tokenizer = load(tiny_checkpoint)
        train_on(model, tokenizer, probe_training_examples(), steps=250, lr=5e-3, batch_size=8)
        return save(model.eval(), tokenizer, tmp_path_factory.mktemp("probe") / "model")


@pytest.fixture
def trained(trained_checkpoint):
    """A fresh in-memory copy of the trained model and its tokenizer."""
    return load(trained_checkpoint)


@pytest.fixture(scope="session")
def registered_tasks():
    """The test tasks in the process-wide registry, so the CLI can name them."""
    import attack_support

    from mu_eval.plugins import get_registry

    registry = get_registry()
    if "attack_test_qa" not in registry.names("tasks"):
        registry.add_plugin(attack_support, "attack_test_tasks")
    return registry
