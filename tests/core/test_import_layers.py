"""Imports run one way: each layer of the core imports only from the layers below it (docs/architecture.md).

Every import is read from the source (module level, inside functions, under TYPE_CHECKING), so a lazy import
that only hides an upward dependency fails here as well as one at the top of a file.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mu_eval"

#: Lowest first. A module belongs to the longest prefix listed; every mu_eval module must have one.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("mu_eval.options", "mu_eval.inputs", "mu_eval.requests", "mu_eval.data", "mu_eval.plain_json",
                    "mu_eval.cache_location", "mu_eval.file_hashes", "mu_eval.identity", "mu_eval.seeding",
                    "mu_eval.run_options", "mu_eval.tiny", "mu_eval.task_data", "mu_eval.caller_state",
                    "mu_eval.distributed", "mu_eval.sharded_training", "mu_eval.paths")),
    ("interfaces", ("mu_eval.task", "mu_eval.method", "mu_eval.backend", "mu_eval.attack",
                    "mu_eval.attack_inputs", "mu_eval.plugins")),
    ("engine", ("mu_eval.engine", "mu_eval.cache", "mu_eval.preflight")),
    ("backends", ("mu_eval.backends",)),
    ("metrics/report", ("mu_eval.metrics", "mu_eval.report", "mu_eval.report_builder", "mu_eval.references")),
    ("evaluation", ("mu_eval.evaluation", "mu_eval.data_fetch")),
    ("unlearning/protocols", ("mu_eval.training", "mu_eval.training_models", "mu_eval.forget_check",
                              "mu_eval.unlearning", "mu_eval.protocols", "mu_eval.protocol_runner",
                              "mu_eval.single_run")),
    ("built-in plugins", ("mu_eval.tasks", "mu_eval.methods", "mu_eval.attacks")),
    ("api", ("mu_eval.api", "mu_eval", "mu_eval.sweep")),
    ("in-loop", ("mu_eval.in_loop", "mu_eval.integrations")),
    ("cli", ("mu_eval.__main__", "mu_eval.cli", "mu_eval.cli_run", "mu_eval.cli_list", "mu_eval.cli_data",
             "mu_eval.cli_lm_eval", "mu_eval.cli_compare", "mu_eval.demo")),
]
#: The built-in plugins are reached through entry points only; the demo is an application that builds its data
#: with the synthetic-profiles generator.
PLUGIN_PACKAGES = ("mu_eval.tasks", "mu_eval.methods", "mu_eval.attacks")
MAY_IMPORT_PLUGINS = ("mu_eval.demo",)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for root, _, files in os.walk(PACKAGE, followlinks=True):  # into the links to tasks/, methods/, attacks/
        for file in sorted(files):
            if file.endswith(".py"):
                found[module_name(Path(root) / file)] = Path(root) / file
    return found


def layer_of(module: str) -> int:
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS (and docs/architecture.md)"
    return best


def imported(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported mu_eval module, line) for every import in the file, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return [(name, line) for name, line in found if name == "mu_eval" or name.startswith("mu_eval.")]


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module an imported name lives in (`mu_eval.task.Task` -> `mu_eval.task`)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


ALL = modules()


def test_every_module_is_in_a_layer():
    for module in ALL:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(ALL))
def test_imports_go_down_only(module):
    own = layer_of(module)
    upward = []
    for name, line in imported(module, ALL[module]):
        target = resolve(name, ALL)
        if target is None or target == module or module.startswith(target + "."):
            continue  # the package itself (its __init__), or a name the package re-exports
        if target.startswith(PLUGIN_PACKAGES) and not module.startswith(PLUGIN_PACKAGES + MAY_IMPORT_PLUGINS):
            upward.append(f"line {line}: {name} (a built-in plugin; reach it through the registry)")
        elif layer_of(target) > own:
            upward.append(f"line {line}: {name} ({LAYERS[layer_of(target)][0]} is above {LAYERS[own][0]})")
    assert not upward, f"{module} imports upward:\n" + "\n".join(upward)


def test_no_import_cycles_among_modules():
    """Within one layer imports may go sideways, but never round in a circle (package __init__ files, which
    re-export, are left out as the cycle checker leaves them out)."""
    leaves = {m for m, p in ALL.items() if p.name != "__init__.py"}
    edges = {m: {t for n, _ in imported(m, ALL[m]) if (t := resolve(n, ALL)) in leaves and t != m} for m in leaves}
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in edges[module]:
            if state.get(target) == 1:
                cycle = trail[trail.index(target):] + [target] if target in trail else [module, target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, trail + [target])
        state[module] = 2

    for module in sorted(leaves):
        if module not in state:
            visit(module, [module])


def test_the_checker_sees_an_upward_import(tmp_path):
    """The walk must catch a lazy upward import inside a function, or the tests above prove nothing."""
    source = tmp_path / "engine_like.py"
    source.write_text("def f():\n    from mu_eval.api import evaluate\n    return evaluate\n")
    names = [name for name, _ in imported("mu_eval.engine", source)]
    assert "mu_eval.api" in names and layer_of(resolve("mu_eval.api.evaluate", ALL)) > layer_of("mu_eval.engine")
