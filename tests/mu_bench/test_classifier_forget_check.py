"""Classifier methods report the forget set's loss before and after too: on a tiny ViT that memorised its
training split, NegGrad+ and SCRUB with their published defaults leave it where it was (and warn), while the
small-model settings of docs/methods.md raise it."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from mu_eval.methods.classifier.data import collate
from mu_eval.plugins import get_registry
from mu_eval.unlearning import run_method


def forget_cross_entropy(model, processor, examples) -> float:
    """Mean cross-entropy of the forget labels, computed here from one batch of every example."""
    inputs, labels = collate(examples, processor, "cpu")
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(**inputs).logits.float(), labels))


def unlearn(name, cifar_unlearning, **options):
    model, processor, data = cifar_unlearning
    method = get_registry().method(name)(progress="false", **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unlearned, section = run_method(method, copy.deepcopy(model), processor, data)
    messages = [str(w.message) for w in caught if "forget-set loss" in str(w.message)]
    return unlearned, section["forget_loss"], messages


SMALL_MODEL = {
    "neggrad_plus": {"epochs": 8, "batch_size": 6, "lr": 0.08, "alpha": 0.2},
    "scrub": {"epochs": 4, "msteps": 4, "lr": 0.01, "batch_size": 8, "forget_batch_size": 3},
}


@pytest.mark.parametrize("name", sorted(SMALL_MODEL))
def test_defaults_do_nothing_on_a_tiny_vit_and_the_small_model_settings_do(cifar_unlearning, name):
    model, processor, data = cifar_unlearning
    before = forget_cross_entropy(model, processor, data.forget)
    _, section, messages = unlearn(name, cifar_unlearning)
    assert section["before"] == pytest.approx(before, rel=1e-4)
    assert section["verdict"] == "unchanged" and len(messages) == 1 and "where it was" in messages[0]
    unlearned, section, messages = unlearn(name, cifar_unlearning, **SMALL_MODEL[name])
    assert section["verdict"] == "raised" and messages == []
    assert section["after"] == pytest.approx(forget_cross_entropy(unlearned, processor, data.forget), rel=1e-4)
    assert section["examples"] == len(data.forget)
    assert section["after"] > 1.0 and section["after"] > forget_cross_entropy(unlearned, processor, data.retain)




def test_a_diverged_training_is_called_so_and_the_section_stays_json(cifar_unlearning):
    import json

    _, section, messages = unlearn("neggrad_plus", cifar_unlearning, epochs=8, batch_size=6, lr=0.5, alpha=0.2)
    assert section["verdict"] == "not a number" and section["after"] is None
    assert len(messages) == 1 and "diverged" in messages[0]
    json.dumps(section, allow_nan=False)  # the report is written without NaN
