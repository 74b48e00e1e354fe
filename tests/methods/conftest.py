"""Fixtures for the method tests: the tiny model taught the support facts once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from methods_support import forget_retain, train_on_facts


@pytest.fixture(scope="session")
def trained_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """The random tiny Llama after 150 steps on all support facts, saved like a real checkpoint."""
    return train_on_facts(tiny_checkpoint, tmp_path_factory.mktemp("methods") / "trained")


@pytest.fixture
def trained(trained_checkpoint):
    """A fresh in-memory copy of the trained model and its tokenizer (methods change models in place)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(trained_checkpoint), AutoTokenizer.from_pretrained(trained_checkpoint)


@pytest.fixture(scope="session")
def before(trained_checkpoint) -> tuple[float, float]:
    """Forget and retain probability of the trained model, before any unlearning."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(trained_checkpoint)
    values = forget_retain(model, AutoTokenizer.from_pretrained(trained_checkpoint))
    assert min(values) > 0.9, f"the tiny model did not learn the support facts: {values}"
    return values
