"""The plain-loop helper: one evaluator called at chosen steps of a hand-written loop, the reference model
evaluated once on the same subset, metrics handed to the loop's logger, and the best checkpoint chosen by a
metric among those that keep a floor."""

from __future__ import annotations

import json

import pytest
from support import FACTS, TRAINING_TEXTS

import mu_eval
from mu_eval.in_loop import Checkpoint, InLoopEvaluator, Selection, choose_best
from mu_eval.task import TextExample
from mu_eval.tiny import build_model, build_tokenizer
from mu_eval.training import TrainConfig, fine_tune

TASK = "synthetic_forget10"
FAST = {"task_options": {TASK: {"people": 10, "mia_sets": "evaluated"}}, "limit": 4, "subset_seed": 1,
        "generate": False}


def checkpoint(step, **metrics):
    return Checkpoint(step, None, None, {f"t/{k}": v for k, v in metrics.items()},
                      directions={"t/fq": True, "t/mu": True, "t/loss": False})


HISTORY = [checkpoint(1, fq=0.9, mu=0.2, loss=3.0), checkpoint(2, fq=0.7, mu=0.6, loss=2.0),
           checkpoint(3, fq=None, mu=0.9, loss=1.0), checkpoint(4, fq=0.8, mu=0.5, loss=2.5),
           checkpoint(5, fq=0.8, mu=None, loss=0.5)]


@pytest.mark.parametrize(("selection", "expected"), [
    (Selection("fq"), 1),                                    # the highest, no floor
    (Selection("fq", floors={"mu": 0.5}), 4),                # step 1 is under the floor, 5 has no utility
    (Selection("t/fq", floors={"t/mu": 0.55}), 2),
    (Selection("fq", mode="min", floors={"mu": 0.5}), 2),
    (Selection("loss"), 5),                                  # lower is better by the metric's own direction
    (Selection("fq", floors={"mu": 0.95}), None),            # nothing qualifies
])
def test_choose_best_keeps_the_floor_and_skips_nulls(selection, expected):
    best = choose_best(HISTORY, selection)
    assert (best.step if best else None) == expected


def test_an_unknown_or_ambiguous_metric_is_named():
    with pytest.raises(ValueError, match="'nope': no task reports it"):
        choose_best(HISTORY, Selection("nope"))
    ambiguous = [Checkpoint(1, None, None, {"a/fq": 1.0, "b/fq": 2.0})]
    with pytest.raises(ValueError, match="several tasks"):
        choose_best(ambiguous, Selection("fq"))


def test_a_plain_loop_logs_each_step_against_a_reference_evaluated_once(tmp_path):
    tokenizer = build_tokenizer(TRAINING_TEXTS, vocab_size=600)
    model = build_model(len(tokenizer), tokenizer=tokenizer, seed=1)
    retain = build_model(len(tokenizer), tokenizer=tokenizer, seed=2)
    logged = []
    evaluator = InLoopEvaluator([TASK], output_dir=tmp_path, reference_model=(retain, tokenizer),
                                select=Selection("forget_quality", floors={"retain_prob": 0.0}),
                                log=lambda metrics, step: logged.append((step, metrics)), **FAST)
    examples = [TextExample(f"Question: {q}\nAnswer: ", a) for q, a in FACTS]
    for step in (0, 1, 2):
        if step:
            fine_tune(model, tokenizer, examples, TrainConfig(steps=2, lr=3e-3, batch_size=5, progress=False))
        evaluator(model, tokenizer, step=step)

    reference = mu_eval.load_report(tmp_path / "reference")
    assert reference.data["config"]["tag"] == "reference" and reference.data["config"]["subset"]["seed"] == 1
    assert [step for step, _ in logged] == [0, 1, 2]
    values = [metrics[f"eval/{TASK}/forget_quality"] for _, metrics in logged]
    for step, value in enumerate(values):
        report = mu_eval.load_report(tmp_path / f"step-{step}")
        assert report.tasks[TASK]["metrics"]["forget_quality"]["value"] == value is not None
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["best"]["step"] == evaluator.best.step == max(range(3), key=lambda s: (values[s], -s))


def test_unknown_evaluate_options_and_a_double_reference_are_refused():
    with pytest.raises(TypeError, match="'lmit'"):
        InLoopEvaluator([TASK], lmit=3)
    with pytest.raises(TypeError, match="'step'"):
        InLoopEvaluator([TASK], step=3)
    with pytest.raises(ValueError, match="not both"):
        InLoopEvaluator([TASK], reference={}, reference_model="x")
