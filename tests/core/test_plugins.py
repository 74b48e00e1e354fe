"""Hook specs, name collisions and broken plugins, through real registries and real pip installs."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import mu_eval
from mu_eval.plugins.registry import DuplicateNameError, PluginLoadError, Registry, UnknownNameError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def plugin_module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, mu_eval.hookimpl(function))
    return module


class DummyTask(mu_eval.Task):
    name = "dummy_task"


class DummyMethod(mu_eval.Method):
    name = "dummy_method"


class DummyAttack(mu_eval.Attack):
    name = "dummy_attack"


class DummyBackend:
    name = "dummy_backend"


@pytest.mark.parametrize(
    ("hook", "kind", "obj", "name"),
    [
        ("register_tasks", "tasks", DummyTask, "dummy_task"),
        ("register_methods", "methods", DummyMethod, "dummy_method"),
        ("register_attacks", "attacks", DummyAttack, "dummy_attack"),
        ("register_backends", "backends", DummyBackend, "dummy_backend"),
    ],
)
def test_each_hook_registers_under_its_kind(hook, kind, obj, name):
    registry = Registry()
    registry.add_plugin(plugin_module("p", **{hook: lambda register: register(obj)}), "p")
    entry = registry.get(kind, name)
    assert entry.obj is obj and entry.plugin == "p"
    assert registry.plugins["p"].registered == {kind: [name]}


def test_register_metrics_keeps_extra_fields():
    registry = Registry()
    registry.add_plugin(plugin_module("m", register_metrics=lambda register: register(len, name="count",
                                                                                       higher_is_better=True)), "m")
    entry = registry.metric("count")
    assert entry.obj is len and entry.extra == {"higher_is_better": True}


def test_two_plugins_registering_one_name_is_an_error_naming_both():
    registry = Registry()
    registry.add_plugin(plugin_module("a", register_tasks=lambda register: register(DummyTask)), "first_plugin")
    with pytest.raises(DuplicateNameError) as error:
        registry.add_plugin(plugin_module("b", register_tasks=lambda register: register(DummyTask)), "second_plugin")
    assert "first_plugin" in str(error.value) and "second_plugin" in str(error.value)
    assert "dummy_task" in str(error.value)


def test_unknown_name_lists_the_closest_names():
    registry = Registry()
    registry.add_plugin(plugin_module("a", register_tasks=lambda register: register(DummyTask)), "a")
    with pytest.raises(UnknownNameError) as error:
        registry.get("tasks", "dumy_task")
    assert "dummy_task" in str(error.value)


def pip_install_target(source: Path, target: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(source)],
        check=True,
        capture_output=True,
    )


def install_plugin(tmp_path: Path, distribution: str, package: str, entry_point: str, code: str) -> Path:
    """Build a one-module plugin distribution and pip-install it into a folder of its own; returns that folder."""
    source = tmp_path / distribution
    (source / package).mkdir(parents=True)
    (source / package / "__init__.py").write_text(code)
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{distribution}"\nversion = "0.0.1"\n'
        f'[project.entry-points.mu_eval]\n{entry_point} = "{package}"\n'
        f'[tool.setuptools]\npackages = ["{package}"]\n'
    )
    target = tmp_path / "site"
    pip_install_target(source, target)
    return target


def run_cli(args: list[str], extra_path: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(extra_path))
    return subprocess.run([sys.executable, "-m", "mu_eval.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd)


@pytest.mark.slow
def test_example_plugin_installed_with_pip_shows_its_task_and_metric(tmp_path, tiny_checkpoint):
    target = tmp_path / "site"
    pip_install_target(PROJECT_ROOT / "plugins" / "mu-eval-example", target)
    listing = run_cli(["list", "plugins"], target, tmp_path)
    assert listing.returncode == 0, listing.stderr
    line = next(row for row in listing.stdout.splitlines() if row.startswith("example"))
    assert "example_capitals" in line and "example_mean_probability" in line and "mu-eval-example" in line
    run = run_cli(["--model", str(tiny_checkpoint), "--tasks", "example_capitals", "--output-path",
                   str(tmp_path / "out"), "--quiet"], target, tmp_path)
    assert run.returncode == 0, run.stderr
    report = mu_eval.load_report(tmp_path / "out")
    nlls = report.items("example_capitals")["nll"]
    import math

    expected = sum(math.exp(-x) for x in nlls) / len(nlls)
    assert report.metric("example_capitals", "mean_probability") == pytest.approx(expected)


@pytest.mark.slow
def test_plugin_that_raises_on_import_is_named_and_the_rest_still_load(tmp_path):
    target = install_plugin(tmp_path, "broken-plugin", "broken_plugin", "broken",
                            "raise RuntimeError('deliberately broken')\n")
    result = run_cli(["list", "plugins"], target, tmp_path)
    assert result.returncode == 0
    assert "broken" in result.stderr and "deliberately broken" in result.stderr
    backends_line = next(line for line in result.stdout.splitlines() if line.startswith("backends (mu-eval)"))
    assert "hf" in backends_line.split("backends:")[1].split(", ")


def test_plugin_failing_inside_its_hook_is_skipped_with_a_warning_and_withdrawn():
    registry = Registry()

    def half_then_fail(register):
        register(DummyTask)
        raise ImportError("optional dependency missing")

    with pytest.warns(RuntimeWarning, match="'flaky'.*optional dependency missing"):
        registry.add_plugin(plugin_module("f", register_tasks=half_then_fail), "flaky")
    registry.add_plugin(plugin_module("g", register_methods=lambda register: register(DummyMethod)), "good")
    assert "dummy_task" not in registry.entries["tasks"]
    assert registry.get("methods", "dummy_method").plugin == "good"
    assert "optional dependency missing" in registry.plugins["flaky"].error


def test_a_builtin_plugin_failing_to_register_is_an_error():
    """mu-eval's own plugins are not optional: a broken one is a broken installation, not a warning."""
    registry = Registry()

    def fail(register):
        raise ImportError("a built-in module is missing")

    with pytest.raises(PluginLoadError, match="mu-eval's own plugin 'tofu'.*a built-in module is missing"):
        registry.add_plugin(plugin_module("t", register_tasks=fail), "tofu", distribution="mu-eval")


def test_a_third_party_name_that_clashes_with_a_builtin_is_refused_with_a_warning():
    registry = Registry()
    registry.add_plugin(plugin_module("b", register_tasks=lambda register: register(DummyTask)), "tofu",
                        distribution="mu-eval")

    class Impostor(mu_eval.Task):
        name = "dummy_task"

    shadow = plugin_module("s", register_tasks=lambda register: register(Impostor),
                           register_methods=lambda register: register(DummyMethod))
    with pytest.warns(RuntimeWarning, match="plugin 'shadow' \\(from shadow-dist\\).*'dummy_task'.*'tofu'"):
        registry.add_plugin(shadow, "shadow", distribution="shadow-dist")
    assert registry.get("tasks", "dummy_task").obj is DummyTask  # the built-in wins
    assert registry.get("methods", "dummy_method").plugin == "shadow"  # the rest of the plugin still loads
    assert registry.plugins["shadow"].refused == {"tasks": ["dummy_task"]}


@pytest.mark.slow
def test_a_pip_installed_plugin_reusing_a_builtin_task_name_leaves_the_cli_working(tmp_path):
    """The built-in wins, the clash is one warning line naming both packages, the rest of the plugin loads."""
    target = install_plugin(tmp_path, "clash-plugin", "clash_plugin", "clash", (
        "import mu_eval\n\n"
        "class Impostor(mu_eval.Task):\n    '''Not TOFU at all.'''\n    name = 'tofu_forget01'\n\n"
        "class Extra(mu_eval.Task):\n    '''The plugin's own task.'''\n    name = 'clash_extra'\n\n"
        "@mu_eval.hookimpl\ndef register_tasks(register):\n    register(Impostor)\n    register(Extra)\n"
    ))
    result = run_cli(["list", "tasks"], target, tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split("\t")[0]: line for line in result.stdout.splitlines()}
    assert "[tofu]" in rows["tofu_forget01"] and "Not TOFU" not in rows["tofu_forget01"]
    assert "[clash]" in rows["clash_extra"]
    assert "wmdp_bio" in rows and "muse_news" in rows
    warning_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warning_lines) == 1, result.stderr
    assert "clash-plugin" in warning_lines[0] and "(from mu-eval)" in warning_lines[0]
    assert "'tofu_forget01'" in warning_lines[0] and "Traceback" not in result.stderr
    plugins = run_cli(["list", "plugins"], target, tmp_path)
    clash_line = next(line for line in plugins.stdout.splitlines() if line.startswith("clash"))
    assert "clash_extra" in clash_line and "refused tasks (built-in names): tofu_forget01" in clash_line
