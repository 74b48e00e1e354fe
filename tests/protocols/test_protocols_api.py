"""`mu_eval.evaluate(..., protocol=...)`: steps, forget-set sizes, fresh or chained weights, the report section."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from protocols_support import ASCENT, FORGET_COUNT, ProtocolFactsTask, metric_values
from support import FACTS
from transformers import AutoModelForCausalLM, AutoTokenizer

import mu_eval
import mu_eval.api
from mu_eval.backend import PLAIN_PROMPT
from mu_eval.protocols import ProtocolError
from mu_eval.report import ReportError, validate_report
from mu_eval.run_options import RunOptions
from mu_eval.task import TaskOptionError

SEED = 1234


def run(checkpoint, protocol, folds, **kwargs):
    return mu_eval.evaluate(str(checkpoint), [ProtocolFactsTask()], method="grad_ascent", method_options=ASCENT,
                            protocol=protocol, protocol_options={"folds": folds}, seed=SEED, progress=False, **kwargs)


def single_run(checkpoint, forget_slice=None):
    """The normal `--method` path (no protocol code) from the original weights."""
    task = ProtocolFactsTask(**({"forget_slice": forget_slice} if forget_slice else {}))
    return mu_eval.evaluate(str(checkpoint), [task], method="grad_ascent", method_options=ASCENT, seed=SEED,
                            use_cache=False, progress=False)


def assert_same_metrics(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-9), key


def assert_all_differ(got: dict, other: dict) -> None:
    for key in other:
        assert got[key] != pytest.approx(other[key], rel=1e-4), f"{key} did not change"


@pytest.fixture(scope="module")
def plain(tiny_checkpoint):
    return mu_eval.evaluate(str(tiny_checkpoint), [ProtocolFactsTask()], use_cache=False, progress=False)


def test_sequential_unlearns_one_fold_after_another(tiny_checkpoint, plain):
    report = run(tiny_checkpoint, "sequential", 2)
    validate_report(report.data)
    steps = report["protocol"]["steps"]
    sizes = [3, 2]  # 5 forget facts in 2 contiguous folds, the first one larger
    assert [s["step"] for s in steps] == [0, 1, 2]
    assert [s["forget_size"] for s in steps] == [0, *sizes] and [s["folds"] for s in steps] == [[], [1], [2]]
    assert steps[0]["method"] is None and steps[0]["wall_time_s"] == 0
    for step, size in zip(steps[1:], sizes):
        assert step["method"]["name"] == "grad_ascent" and step["method"]["data"]["forget"] == size
        assert step["method"]["data"]["retain"] == len(FACTS) - FORGET_COUNT and step["wall_time_s"] > 0
    baseline = metric_values(steps[0]["tasks"])
    assert_same_metrics(baseline, metric_values(plain.tasks))
    assert_all_differ(metric_values(steps[1]["tasks"]), baseline)
    assert_all_differ(metric_values(steps[2]["tasks"]), metric_values(steps[1]["tasks"]))
    assert report.tasks["protocol_facts"]["metrics"] == steps[-1]["tasks"]["protocol_facts"]["metrics"]
    assert report["method"] == steps[-1]["method"]
    assert report["protocol"]["options"] == {"folds": 2, "baseline": True}
    assert report["protocol"]["folds"]["source"] == "split" and report["protocol"]["folds"]["sizes"] == sizes
    assert report["config"]["model"] == str(tiny_checkpoint) and report["config"]["protocol"] == "sequential"
    assert report["config"]["method"] == "grad_ascent" and report["config"]["method_options"] == ASCENT

    # the chain by hand: fold 1 then fold 2 on the same in-memory model, each with the run's seed
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    assert not tokenizer.chat_template, "the folds below are built with the plain prompt"
    facts = [mu_eval.TextExample(PLAIN_PROMPT.format(question=q), a) for q, a in FACTS]
    forget, retain = facts[:FORGET_COUNT], facts[FORGET_COUNT:]
    for fold in (forget[:3], forget[3:]):
        mu_eval.unlearn(model, tokenizer, "grad_ascent", forget=fold, retain=retain, seed=SEED, **ASCENT)
    by_hand = mu_eval.evaluate((model, tokenizer), [ProtocolFactsTask()], progress=False)
    assert_same_metrics(metric_values(steps[2]["tasks"]), metric_values(by_hand.tasks))


def test_growing_restarts_every_step_from_the_original_weights(tiny_checkpoint):
    report = run(tiny_checkpoint, "growing", 2)
    steps = report["protocol"]["steps"]
    assert [s["forget_size"] for s in steps] == [0, 3, 5] and [s["folds"] for s in steps] == [[], [1], [1, 2]]
    assert [s["method"]["data"]["forget"] for s in steps[1:]] == [3, 5]
    # step k equals a plain single run on folds 1..k from the original model
    assert_same_metrics(metric_values(steps[1]["tasks"]), metric_values(single_run(tiny_checkpoint, "0:3").tasks))
    assert_same_metrics(metric_values(steps[2]["tasks"]), metric_values(single_run(tiny_checkpoint).tasks))
    assert_all_differ(metric_values(steps[1]["tasks"]), metric_values(steps[0]["tasks"]))
    assert report.tasks["protocol_facts"]["metrics"] == steps[-1]["tasks"]["protocol_facts"]["metrics"]


def test_cached_answers_belong_to_each_steps_weights(tiny_checkpoint, tmp_path, plain):
    """With the cache on, a step's answers are never those cached for the checkpoint's own weights."""
    cache = tmp_path / "cache"
    mu_eval.evaluate(str(tiny_checkpoint), [ProtocolFactsTask()], cache_dir=cache, progress=False)

    def one_step():
        return mu_eval.evaluate(
            str(tiny_checkpoint), [ProtocolFactsTask()], method="grad_ascent", method_options=ASCENT,
            protocol="sequential", protocol_options={"folds": 1, "baseline": "false"}, seed=SEED,
            use_cache=True, cache_dir=cache, progress=False)

    report = one_step()
    assert report["config"]["cache"] is not None and report["engine"]["answered"] == len(FACTS)
    assert [s["step"] for s in report["protocol"]["steps"]] == [1]
    assert_all_differ(metric_values(report.tasks), metric_values(plain.tasks))
    again = one_step()
    assert again["engine"]["from_cache"] == len(FACTS), "the same unlearned weights are answered from the cache"
    assert_same_metrics(metric_values(again.tasks), metric_values(report.tasks))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protocol": "zigzag"}, "unknown protocol 'zigzag'"),
        ({"protocol": "sequential", "method": None}, "needs an unlearning method"),
        ({"protocol": "growing", "protocol_options": {"fold": 2}}, "valid options: folds, baseline"),
        ({"protocol": "growing", "protocol_options": {"folds": "0"}}, "folds=0: must be at least 1"),
        ({"protocol": "growing", "attacks": ["loss_mia"]}, "attacks do not run under a protocol"),
    ],
)
def test_bad_protocol_requests_fail_before_the_model_loads(kwargs, message, tmp_path):
    arguments = {"method": "grad_ascent", **kwargs}
    with pytest.raises(ProtocolError, match=message):
        mu_eval.evaluate(str(tmp_path / "no-model-here"), [ProtocolFactsTask()], progress=False, **arguments)


def test_bad_task_options_fail_before_the_model_loads(tmp_path):
    """The path does not exist: loading first would raise BackendError, not the task's own error."""
    with pytest.raises(TaskOptionError, match="max_new_tokens='many': expected an integer"):
        mu_eval.evaluate(str(tmp_path / "no-model-here"), ["synthetic_forget10"], method="grad_ascent",
                         task_options={"synthetic_forget10": {"max_new_tokens": "many"}}, protocol="growing",
                         progress=False)


def test_run_options_default_to_evaluates_defaults():
    """A step is evaluated with `RunOptions`; their defaults are `evaluate`'s, so both paths mean the same."""
    defaults = {name: p.default for name, p in inspect.signature(mu_eval.api.evaluate).parameters.items()}
    options = {field.name: field.default for field in dataclasses.fields(RunOptions)}
    assert options and all(defaults[name] == value for name, value in options.items())


def test_more_folds_than_forget_examples_is_an_error(tiny_checkpoint):
    with pytest.raises(ProtocolError, match=f"cannot split {FORGET_COUNT} examples into 9 folds"):
        run(tiny_checkpoint, "sequential", 9)


def test_schema_rejects_a_step_without_metrics(tiny_checkpoint):
    report = run(tiny_checkpoint, "growing", 1).data
    del report["protocol"]["steps"][1]["tasks"]["protocol_facts"]["metrics"]["first_fact"]["n"]
    with pytest.raises(ReportError, match=r"report.protocol.steps\[1\].tasks.protocol_facts.metrics.first_fact"):
        validate_report(report)
