"""`evaluate` and `unlearn` inside a training loop leave the loop's world as they found it: the global random
generators continue where they were, and the model and tokenizer keep their modes, places and flags."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from support import FACTS, TRAINING_TEXTS, QATask

import mu_eval
from mu_eval.caller_state import preserved_state
from mu_eval.tiny import build_model, build_tokenizer


@pytest.fixture()
def model_and_tokenizer():
    tokenizer = build_tokenizer(TRAINING_TEXTS, vocab_size=600)
    return build_model(len(tokenizer), tokenizer=tokenizer), tokenizer


def draws() -> tuple:
    """One draw from each global generator (advances them, as a training loop's next step would)."""
    return random.random(), float(np.random.random()), torch.rand(3).tolist()


def mixed_state(model, tokenizer) -> None:
    """A caller's state no default would restore by accident: training, with one layer in eval mode and the
    embedding frozen, right padding."""
    model.train()
    model.model.layers[0].eval()
    model.model.embed_tokens.weight.requires_grad_(False)
    tokenizer.padding_side = "right"


def snapshot(model, tokenizer) -> dict:
    return {
        "modes": {name: m.training for name, m in model.named_modules()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "places": {name: (t.device, t.dtype) for name, t in [*model.named_parameters(), *model.named_buffers()]},
        "padding_side": tokenizer.padding_side,
        "grad_enabled": torch.is_grad_enabled(),
    }


def test_evaluate_leaves_generators_model_and_tokenizer_as_they_were(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    mixed_state(model, tokenizer)
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    draws()
    before = snapshot(model, tokenizer)
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    expected = draws()  # what the loop would draw next without the evaluation
    random.setstate(rng[0]), np.random.set_state(rng[1]), torch.set_rng_state(rng[2])

    mu_eval.evaluate((model, tokenizer), [QATask()], progress=False, limit=2)

    assert draws() == expected
    assert snapshot(model, tokenizer) == before


def test_the_seeded_evaluation_does_not_restart_the_loop_generators(model_and_tokenizer):
    """The reported bug: after one call, torch.rand returned what it returns right after manual_seed(1234)."""
    model, tokenizer = model_and_tokenizer
    torch.manual_seed(99)
    mu_eval.evaluate((model, tokenizer), [QATask()], progress=False, limit=1, seed=1234)
    after = torch.rand(4)
    torch.manual_seed(1234)
    assert not torch.equal(after, torch.rand(4))
    torch.manual_seed(99)
    assert torch.equal(after, torch.rand(4))


def test_unlearn_hands_back_modes_flags_and_generators(model_and_tokenizer):
    """A method trains the model (train mode, every parameter trainable); the caller's setup comes back, while
    the weights keep what the method did to them."""
    model, tokenizer = model_and_tokenizer
    mixed_state(model, tokenizer)
    model.model.layers[0].eval()
    before = snapshot(model, tokenizer)
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    torch.manual_seed(5)
    state = torch.get_rng_state()
    pairs = [(f"Question: {q}\nAnswer: ", a) for q, a in FACTS[:3]]
    mu_eval.unlearn(model, tokenizer, "grad_ascent", forget=pairs, steps=2, lr=1e-3, batch_size=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert snapshot(model, tokenizer) == before
    changed = [name for name, p in model.named_parameters() if not torch.equal(weights[name], p)]
    assert changed and "model.embed_tokens.weight" not in changed


def test_preserved_state_puts_back_what_the_body_changed(model_and_tokenizer):
    """Each part of the restore, exercised directly: the body changes everything the manager promises."""
    model, tokenizer = model_and_tokenizer
    mixed_state(model, tokenizer)
    before = snapshot(model, tokenizer)
    weight = model.lm_head.weight
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    with pytest.raises(RuntimeError, match="boom"), preserved_state(model, tokenizer):
        torch.manual_seed(0), random.seed(0), np.random.seed(0)
        model.to(torch.bfloat16)
        model.eval()
        model.requires_grad_(True)
        tokenizer.padding_side = "left"
        torch.set_grad_enabled(False)
        raise RuntimeError("boom")
    assert snapshot(model, tokenizer) == before
    assert model.lm_head.weight is weight  # the caller's optimizer still holds the same parameter objects
    assert torch.equal(torch.rand(2), expected)


def test_cuda_generators_and_a_model_on_the_gpu_come_back(model_and_tokenizer):
    if not torch.cuda.is_available():
        pytest.skip("not applicable here: no CUDA device")
    model, tokenizer = model_and_tokenizer
    model.cuda()
    mixed_state(model, tokenizer)
    before = snapshot(model, tokenizer)
    torch.cuda.manual_seed_all(21)
    state = torch.cuda.get_rng_state_all()
    mu_eval.evaluate((model, tokenizer), [QATask()], progress=False, limit=2)
    assert all(torch.equal(a, b) for a, b in zip(torch.cuda.get_rng_state_all(), state))
    assert snapshot(model, tokenizer) == before
