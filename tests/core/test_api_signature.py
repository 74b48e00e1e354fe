"""`help(mu_eval.evaluate)` shows the real signature and documents every argument."""

from __future__ import annotations

import dataclasses
import inspect
import re

import mu_eval
from mu_eval.run_options import RunOptions


def documented_arguments(function) -> set[str]:
    """Names listed in the docstring's `Args:` section (an indented `name:` at the start of a line)."""
    doc = inspect.getdoc(function) or ""
    args = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    return set(re.findall(r"^    (\w+):", args, flags=re.MULTILINE))


def test_evaluate_shows_its_keyword_parameters_each_documented():
    signature = inspect.signature(mu_eval.evaluate)
    names = set(signature.parameters)
    assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in signature.parameters.values())
    assert {"progress", "use_cache", "task_options", "extra_config", "step", "tag"} <= names
    assert documented_arguments(mu_eval.evaluate) == names
    assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values())


def test_every_run_option_is_an_evaluate_argument_with_the_same_default():
    parameters = inspect.signature(mu_eval.evaluate).parameters
    for option in dataclasses.fields(RunOptions):
        assert option.name in parameters, f"RunOptions.{option.name} is not an argument of evaluate"
        assert parameters[option.name].default == option.default, option.name
