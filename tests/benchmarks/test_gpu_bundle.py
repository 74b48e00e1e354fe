"""The GPU bundle carries every runtime dependency the benchmarks import, beyond torch and transformers."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import sys
from pathlib import Path

from benchmarks.gpu_bundle import PROVIDED, bundled_distributions, canonical, requirement_closure

ROOT = Path(__file__).resolve().parents[2]
#: Imports of optional extras (pyproject's vllm and plot), guarded where they are used.
OPTIONAL = {"vllm", "matplotlib"}


def imported_top_levels(folders: list[Path]) -> set[str]:
    """Top-level names of every import statement (module level or inside functions) under the folders."""
    names: set[str] = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names


def test_every_third_party_import_is_bundled_or_comes_with_torch_and_transformers():
    # the package as installed: mu_eval's own modules and the built-in plugins its links lead to
    folders = [ROOT / "benchmarks", ROOT / "mu_eval", ROOT / "tasks", ROOT / "methods", ROOT / "attacks"]
    modules = imported_top_levels(folders) - set(sys.stdlib_module_names) - {"mu_eval", "benchmarks", "__future__"}
    owners = metadata.packages_distributions()
    bundled = set(bundled_distributions())
    provided = set(requirement_closure(list(PROVIDED)))
    uncovered = {}
    for module in sorted(modules - OPTIONAL):
        distributions = {canonical(name) for name in owners.get(module, [])}
        assert distributions, f"{module} is imported but no installed distribution provides it"
        if not distributions & (bundled | provided):
            uncovered[module] = sorted(distributions)
    assert not uncovered, f"imported but neither bundled nor brought by torch/transformers: {uncovered}"
    # the libraries the issue found missing on a GPU machine are all carried
    assert {"datasets", "jsonlines", "rouge-score", "rouge", "nltk"} <= bundled


def test_the_bundle_leaves_out_what_the_machine_has():
    bundled = bundled_distributions()
    provided = requirement_closure(list(PROVIDED))
    assert not set(bundled) & set(provided) and "mu-eval" not in bundled
    assert {"torch", "transformers", "tokenizers", "safetensors", "numpy"} <= set(provided)
    for name, version in bundled.items():
        assert metadata.version(name) == version
