"""Sequential unlearning requests (sustainability) and growing forget sets (scalability)."""

from __future__ import annotations

import json

import pytest
import torch
from methods_support import FORGET, RETAIN, FactsUnlearningTask, probability

import mu_eval
from mu_eval.protocols import growing_forget_sets, sequential_unlearning, split_folds

OPTIONS = {"steps": 20, "lr": 1e-3, "batch_size": 3, "grad_accum_steps": 1, "warmup_ratio": 0.0}


def per_fact(model, tokenizer, _step):
    facts = [probability(model, tokenizer, [e]) for e in FORGET]
    return {"facts": facts, "retain": probability(model, tokenizer, RETAIN)}


def test_split_folds_covers_every_example_once():
    folds = split_folds(list(range(7)), 3)
    assert folds == [[0, 1, 2], [3, 4], [5, 6]]
    with pytest.raises(ValueError):
        split_folds([1, 2], 3)


def test_sequential_requests_stay_forgotten(trained):
    model, tokenizer = trained
    steps = sequential_unlearning(model, tokenizer, "npo", split_folds(FORGET, 3), per_fact, retain=RETAIN,
                                  options=OPTIONS)
    assert [s.step for s in steps] == [0, 1, 2, 3] and [s.forget_size for s in steps] == [0, 1, 1, 1]
    assert min(steps[0].result["facts"]) > 0.9
    for step in steps[1:]:
        facts = step.result["facts"]
        assert max(facts[: step.step]) < 0.1, f"step {step.step}: an earlier request came back: {facts}"
        assert all(p > 0.3 for p in facts[step.step :]), f"step {step.step}: a later fold was forgotten early"
        assert step.result["retain"] > 0.8
        assert step.method["name"] == "npo" and step.wall_time_s > 0
    assert per_fact(model, tokenizer, 3)["facts"] == pytest.approx(steps[-1].result["facts"])
    json.dumps([s.to_json() for s in steps])


def test_growing_forget_sets_restart_from_the_original_model(trained):
    model, tokenizer = trained
    original = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    seen_sizes = []

    def evaluate(model, tokenizer, step):
        seen_sizes.append(step)
        report = mu_eval.evaluate((model, tokenizer), [FactsUnlearningTask()], progress=False)
        return {"report": report, **per_fact(model, tokenizer, step)}

    steps = growing_forget_sets(model, tokenizer, "npo", split_folds(FORGET, 3), evaluate, retain=RETAIN,
                                options=OPTIONS)
    assert seen_sizes == [0, 1, 2, 3]
    assert [s.forget_size for s in steps] == [0, 1, 2, 3] and steps[3].folds == [1, 2, 3]
    for step in steps[1:]:
        assert max(step.result["facts"][: step.step]) < 0.1
        assert step.result["report"].metric("methods_facts", "retain_probability") > 0.8
    assert steps[3].result["report"].metric("methods_facts", "forget_probability") < 0.1
    assert all(torch.equal(tensor, original[name]) for name, tensor in model.state_dict().items())
    fresh = sequential_unlearning(model, tokenizer, "npo", split_folds(FORGET, 3)[:1], per_fact, retain=RETAIN,
                                  options=OPTIONS, baseline=False)
    assert fresh[0].result["facts"] == pytest.approx(steps[1].result["facts"], abs=1e-5)
