"""The Python API on an in-memory model, as a training loop would call it."""

from __future__ import annotations

import pytest
import torch
from support import FACTS, QATask

import mu_eval
from mu_eval.task import TextExample
from mu_eval.tiny import build_model, build_tokenizer
from mu_eval.training import TrainConfig, fine_tune


@pytest.fixture()
def model_and_tokenizer():
    from support import TRAINING_TEXTS

    tokenizer = build_tokenizer(TRAINING_TEXTS, vocab_size=600)
    return build_model(len(tokenizer), tokenizer=tokenizer), tokenizer


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_hands_the_model_back_in_its_mode_and_place(model_and_tokenizer, training):
    model, tokenizer = model_and_tokenizer
    model.train(training)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    report = mu_eval.evaluate((model, tokenizer), [QATask()], progress=False)
    assert model.training is training
    assert next(model.parameters()).device == torch.device("cpu")
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())
    assert report.data["config"]["model"] is None
    assert report.data["model"]["model"].startswith("in-memory")


def test_evaluation_inside_a_training_loop_tracks_learning(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    examples = [TextExample(f"Question: {q}\nAnswer: ", a) for q, a in FACTS]
    before = mu_eval.evaluate(model, [QATask()], tokenizer=tokenizer, progress=False)
    model.train()
    fine_tune(model, tokenizer, examples, TrainConfig(steps=60, lr=3e-3, batch_size=10, progress=False))
    after = mu_eval.evaluate(model, [QATask()], tokenizer=tokenizer, progress=False)
    assert model.training
    p_before = before.metric("support_qa", "probability")
    p_after = after.metric("support_qa", "probability")
    assert p_after > p_before + 0.2
