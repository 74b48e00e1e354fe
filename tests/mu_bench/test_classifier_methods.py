"""Classifier unlearning methods on a tiny ViT that memorised its training split."""

from __future__ import annotations

import copy

import pytest
import torch

from mu_eval.method import MethodError
from mu_eval.methods.classifier.data import collate
from mu_eval.plugins import get_registry
from mu_eval.task import TextExample, UnlearningData


def accuracy(model, processor, examples) -> float:
    inputs, labels = collate(examples, processor, "cpu")
    with torch.no_grad():
        return float((model(**inputs).logits.argmax(-1) == labels).float().mean())


def unlearn(name, cifar_unlearning, **options):
    model, processor, data = cifar_unlearning
    fresh = copy.deepcopy(model)
    method = get_registry().method(name)(progress="false", **options)
    return method.unlearn(fresh, processor, data), method


FORGETTING = [
    ("neggrad", {"epochs": 20, "batch_size": 6, "lr": 0.5}),
    ("neggrad_plus", {"epochs": 8, "batch_size": 6, "lr": 0.5, "alpha": 0.2}),
    ("random_label", {"epochs": 6, "batch_size": 8, "lr": 0.05}),
    ("salun", {"epochs": 6, "batch_size": 8, "lr": 0.05}),
    ("bad_teacher", {"epochs": 4, "batch_size": 8, "lr": 0.01, "retain_fraction": 0.3}),
    ("scrub", {"epochs": 4, "msteps": 4, "lr": 0.01, "batch_size": 8, "forget_batch_size": 3}),
]


@pytest.mark.parametrize(("name", "options"), FORGETTING, ids=[n for n, _ in FORGETTING])
def test_method_lowers_forget_accuracy(cifar_unlearning, name, options):
    model, processor, data = cifar_unlearning
    assert accuracy(model, processor, data.forget) == 1.0
    unlearned, method = unlearn(name, cifar_unlearning, **options)
    assert accuracy(unlearned, processor, data.forget) < 0.7, method.info
    assert method.info["steps"] > 0 and not unlearned.training
    assert accuracy(model, processor, data.forget) == 1.0  # the original (the teacher's source) is untouched


def test_salun_changes_only_the_salient_half(cifar_unlearning):
    model, _, _ = cifar_unlearning
    unlearned, method = unlearn("salun", cifar_unlearning, epochs=1, batch_size=8, lr=0.05, momentum=0.0,
                                weight_decay=0.0)
    assert method.info["mask_fraction"] == pytest.approx(0.5, abs=1e-3)
    before = dict(model.named_parameters())
    changed = sum(int((p != before[n]).sum()) for n, p in unlearned.named_parameters())
    total = sum(p.numel() for p in unlearned.parameters())
    assert 0 < changed <= total * 0.5 + 1


def test_l1_sparse_with_zero_gamma_is_plain_fine_tuning_and_gamma_shrinks_weights(cifar_unlearning):
    model, processor, data = cifar_unlearning
    common = {"epochs": 2, "batch_size": 6, "lr": 0.05, "seed": 4}
    ft, _ = unlearn("ft", cifar_unlearning, **common)
    l1_zero, _ = unlearn("l1_sparse", cifar_unlearning, gamma=0.0, **common)
    for (_, a), (_, b) in zip(ft.named_parameters(), l1_zero.named_parameters()):
        assert torch.equal(a, b)
    l1, _ = unlearn("l1_sparse", cifar_unlearning, gamma=0.05, **common)
    norm = lambda m: sum(float(p.detach().abs().sum()) for p in m.parameters())  # noqa: E731
    assert norm(l1) < norm(ft)
    assert accuracy(ft, processor, data.retain) == 1.0


def test_ssd_dampens_exactly_the_selected_weights(cifar_unlearning):
    model, processor, data = cifar_unlearning
    unlearned, method = unlearn("ssd", cifar_unlearning, alpha=1.5, batch_size=6)
    assert method.info["dampened_parameters"] > 0
    # second implementation for the classifier head: mean squared gradients over batches
    head = "classifier.weight"

    def importance(examples):
        total = torch.zeros_like(dict(model.named_parameters())[head])
        batches = [examples[i : i + 6] for i in range(0, len(examples), 6)]
        for chunk in batches:
            probe = copy.deepcopy(model)
            inputs, labels = collate(chunk, processor, "cpu")
            torch.nn.functional.cross_entropy(probe(**inputs).logits, labels).backward()
            total += dict(probe.named_parameters())[head].grad ** 2
        return total / len(batches)

    i_d, i_f = importance(list(data.retain) + list(data.forget)), importance(list(data.forget))
    selected = i_f > 1.5 * i_d
    factor = torch.clamp(i_d / i_f.clamp_min(1e-30), max=1.0)
    old, new = dict(model.named_parameters())[head], dict(unlearned.named_parameters())[head]
    expected = torch.where(selected, old * factor, old)
    assert torch.allclose(new, expected, atol=1e-6)
    assert bool(selected.any())


def test_methods_reject_text_examples(cifar_unlearning):
    model, processor, _ = cifar_unlearning
    method = get_registry().method("salun")()
    with pytest.raises(MethodError, match="labelled classifier examples"):
        method.unlearn(model, processor, UnlearningData([TextExample("q", "a")], []))


def test_registered_methods_are_classifier_kind():
    registry = get_registry()
    for name in ("ft", "neggrad", "neggrad_plus", "random_label", "salun", "bad_teacher", "scrub", "ssd", "l1_sparse"):
        assert registry.method(name).kind == "classifier"
