"""Unlearn-then-evaluate through `mu_eval.evaluate`, the CLI and `mu_eval.unlearn`; the saved model reloads."""

from __future__ import annotations

import json
import types

import pytest
from methods_support import FORGET, RETAIN, FactsUnlearningTask, forget_retain
from support import QATask

import mu_eval
from mu_eval.method import MethodError, MethodOptionError
from mu_eval.plugins import get_registry

NPO_ARGS = {"steps": "20", "lr": "1e-3", "batch_size": "3", "grad_accum_steps": "1", "warmup_ratio": "0"}


def register_facts_task() -> str:
    registry = get_registry()
    if FactsUnlearningTask.name not in registry.entries["tasks"]:
        module = types.ModuleType("methods_test_plugin")
        module.register_tasks = mu_eval.hookimpl(lambda register: register(FactsUnlearningTask))
        registry.add_plugin(module, "methods_test_plugin")
    return FactsUnlearningTask.name


def test_evaluate_with_method_reports_name_config_and_time(trained, before):
    report = mu_eval.evaluate(trained, [FactsUnlearningTask()], method="npo", method_options=NPO_ARGS, progress=False)
    section = report["method"]
    assert section["name"] == "npo" and section["plugin"] == "llm_methods"
    assert report["config"]["method"] == "npo" and report["config"]["method_options"] == NPO_ARGS
    options = section["config"]["options"]
    assert options["steps"] == 20 and options["lr"] == 1e-3 and options["beta"] == 0.1
    assert options["seed"] == 1234, "the run's seed trains the method when none is given"
    assert section["wall_time_s"] > 0 and report["timings"]["method"] >= section["wall_time_s"]
    assert section["data"] == {"forget": 3, "retain": 7, "holdout": 0, "tasks": ["methods_facts"]}
    assert section["info"]["steps"] == 20
    assert report.metric("methods_facts", "forget_probability") < 0.5 * before[0]
    assert report.metric("methods_facts", "retain_probability") > 0.6


def test_saved_model_reloads_with_the_same_answers(trained_checkpoint, tmp_path):
    options = dict(NPO_ARGS, steps="10")
    report = mu_eval.evaluate(
        str(trained_checkpoint), [FactsUnlearningTask()], method="grad_diff", method_options=options,
        save_model=tmp_path / "unlearned", use_cache=False, progress=False,
    )
    assert report["method"]["saved_to"] == str(tmp_path / "unlearned")
    assert (tmp_path / "unlearned" / "config.json").is_file()
    assert (tmp_path / "unlearned" / "tokenizer.json").is_file()
    reloaded = mu_eval.evaluate(str(tmp_path / "unlearned"), [FactsUnlearningTask()], use_cache=False, progress=False)
    original = mu_eval.evaluate(str(trained_checkpoint), [FactsUnlearningTask()], use_cache=False, progress=False)
    got, want = reloaded.items("methods_facts")["probability"], report.items("methods_facts")["probability"]
    assert got == pytest.approx(want, abs=1e-6)
    assert got != pytest.approx(original.items("methods_facts")["probability"], abs=1e-3)


def test_unlearn_api_in_memory_and_from_a_path(trained, trained_checkpoint, before):
    model, tokenizer = trained
    pairs = [(e.prompt, e.answer) for e in FORGET]
    options = {key: value for key, value in NPO_ARGS.items()}
    result = mu_eval.unlearn(model, tokenizer, "simnpo", forget=pairs, retain=RETAIN, **options)
    assert result.model is model and result.method["name"] == "simnpo"
    assert result.method["config"]["options"]["steps"] == 20
    forget, retain = forget_retain(result.model, tokenizer)
    assert forget < 0.5 * before[0] and retain > 0.6
    from_path = mu_eval.unlearn(str(trained_checkpoint), method="grad_ascent", forget=FORGET, steps=2, lr=1e-3)
    assert from_path.tokenizer is not None and from_path.method["info"]["steps"] == 2


def test_unknown_option_lists_the_valid_ones(trained):
    with pytest.raises(MethodOptionError) as error:
        mu_eval.evaluate(trained, [FactsUnlearningTask()], method="npo", method_options={"betta": "0.2"})
    message = str(error.value)
    assert "'betta'" in message and "beta" in message and "retain_weight" in message


def test_method_needs_a_task_with_unlearning_data(trained):
    with pytest.raises(MethodError, match="support_qa"):
        mu_eval.evaluate(trained, [QATask()], method="grad_ascent", method_options={"steps": "1"})


def test_retain_term_without_retain_data_is_an_error(trained):
    model, tokenizer = trained
    with pytest.raises(MethodError, match="retain_loss=none"):
        mu_eval.unlearn(model, tokenizer, "grad_diff", forget=FORGET, steps=1)


def test_cli_unlearns_then_evaluates(trained_checkpoint, tmp_path, capsys):
    from mu_eval.cli import main

    task = register_facts_task()
    args = ",".join(f"{key}={value}" for key, value in NPO_ARGS.items())
    code = main([
        "--model", str(trained_checkpoint), "--tasks", task, "--method", "npo", "--method-args", args,
        "--output-path", str(tmp_path), "--quiet", "--no-cache",
    ])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "unlearning (npo)" not in err, "--quiet also silences the method's training bar"
    report = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert report["method"]["name"] == "npo" and report["method"]["config"]["options"]["steps"] == 20


def test_method_training_bar_shows_unless_quiet(trained, capsys):
    task = FactsUnlearningTask()
    options = dict(NPO_ARGS, steps="2")
    mu_eval.evaluate(trained, [task], method="npo", method_options=options, progress=True)
    assert "unlearning (npo)" in capsys.readouterr().err
    mu_eval.evaluate(trained, [task], method="npo", method_options=options, progress=False)
    assert "unlearning (npo)" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("method_args", "expected"),
    [("steps=many", "option steps='many': expected an integer"), ("colour=red", "valid options:")],
)
def test_cli_rejects_bad_method_args_in_one_line(trained_checkpoint, capsys, method_args, expected):
    from mu_eval.cli import main

    task = register_facts_task()
    code = main(["--model", str(trained_checkpoint), "--tasks", task, "--method", "npo", "--method-args", method_args])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("mu-eval: error:")]
    assert code == 2 and len(errors) == 1 and expected in errors[0] and "Traceback" not in err
    assert "Loading weights" not in err, "options are checked before the model is loaded"


def test_union_keeps_a_tasks_own_repeats_and_drops_what_an_earlier_task_gave():
    from mu_eval.task import TaskContext, TextExample, UnlearningData
    from mu_eval.unlearning import collect_unlearning_data

    a, b, c = (TextExample("", f"document {i}") for i in "abc")

    class Corpus(mu_eval.Task):
        def __init__(self, name, forget, retain):
            super().__init__()
            self.name, self.forget, self.retain = name, forget, retain

        def unlearning_data(self, ctx):
            return UnlearningData(list(self.forget), list(self.retain))

    tasks = {"first": Corpus("first", [a, b, a], [c]), "second": Corpus("second", [b, c, c], [c, a])}
    ctx = TaskContext(load=lambda spec: [], chat=lambda q: q, uses_chat_template=False)
    data, providers = collect_unlearning_data(tasks, {name: ctx for name in tasks})
    assert providers == ["first", "second"]
    assert data.forget == [a, b, a, c, c] and data.retain == [c, a]
