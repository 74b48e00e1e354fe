"""A method that does not raise the forget set's loss says so: the report's method section holds the loss
before and after (checked against a direct computation), and a method that left it where it was, or lowered
it, warns in one line. The small-model RMU setting of docs/methods.md is checked to raise it."""

from __future__ import annotations

import warnings

import pytest
import torch
from methods_support import answer_tokens, split

import mu_eval


def mean_answer_nll(model, tokenizer, items) -> float:
    """Per-token NLL over all answer tokens, each example scored alone (no padding, no batching)."""
    total, count = 0.0, 0
    for logits, tokens in answer_tokens(model, tokenizer, items):
        total -= float(torch.log_softmax(logits.float(), -1).gather(-1, tokens[:, None]).sum())
        count += len(tokens)
    return total / count


def unlearn(trained, method, **options):
    model, tokenizer = trained
    data = split()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = mu_eval.unlearn(model, tokenizer, method, forget=data.forget, retain=data.retain, **options)
    messages = [str(w.message) for w in caught if "forget-set loss" in str(w.message)]
    return result, messages, data


def test_a_method_that_unlearns_reports_the_loss_before_and_after_and_no_warning(trained, trained_checkpoint):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    original = AutoModelForCausalLM.from_pretrained(trained_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(trained_checkpoint)
    result, messages, data = unlearn(trained, "grad_ascent", steps=10, lr=1e-3, batch_size=3, grad_accum_steps=1)
    section = result.method["forget_loss"]
    assert section["verdict"] == "raised" and messages == []
    assert section["examples"] == len(data.forget)
    assert section["before"] == pytest.approx(mean_answer_nll(original, tokenizer, data.forget), rel=1e-4)
    assert section["after"] == pytest.approx(mean_answer_nll(result.model, tokenizer, data.forget), rel=1e-4)
    assert section["after"] > section["before"] + 0.05


def test_a_method_that_changes_nothing_says_so_with_the_numbers(trained):
    result, messages, _ = unlearn(trained, "grad_ascent", steps=3, lr=0.0, batch_size=3, grad_accum_steps=1)
    section = result.method["forget_loss"]
    assert section["verdict"] == "unchanged" and section["before"] == pytest.approx(section["after"], abs=1e-6)
    assert len(messages) == 1 and "left the forget-set loss where it was" in messages[0]
    assert f"{section['before']:.4f} before" in messages[0] and "\n" not in messages[0]


def test_a_method_that_moves_the_loss_the_wrong_way_says_so(tiny_checkpoint):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    untrained = (AutoModelForCausalLM.from_pretrained(tiny_checkpoint), AutoTokenizer.from_pretrained(tiny_checkpoint))
    # a negative forget weight descends on the forget set: it learns it instead of forgetting it
    result, messages, _ = unlearn(untrained, "grad_diff", steps=10, lr=1e-3, batch_size=3, grad_accum_steps=1,
                                  forget_weight=-1.0, retain_weight=0.0)
    section = result.method["forget_loss"]
    assert section["verdict"] == "lowered" and section["after"] < section["before"] - 0.05
    assert len(messages) == 1 and "the wrong way" in messages[0]


def test_rmu_defaults_do_nothing_on_a_tiny_model_and_the_small_model_setting_does(trained, trained_checkpoint):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, messages, _ = unlearn(trained, "rmu")
    assert len(messages) == 1 and "where it was" in messages[0]  # WMDP's 7B recipe, on 2 layers of width 64
    fresh = AutoModelForCausalLM.from_pretrained(trained_checkpoint), AutoTokenizer.from_pretrained(trained_checkpoint)
    result, messages, _ = unlearn(fresh, "rmu", steering_coeff=20, retain_weight=100, steps=50, lr=1e-3)
    assert result.method["forget_loss"]["verdict"] == "raised" and messages == []
