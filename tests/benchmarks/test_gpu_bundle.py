"""The GPU bundle carries every runtime dependency the benchmarks import, beyond torch and transformers, and
leaves out what a GPU machine already has at a version mu-eval accepts."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import sys
from pathlib import Path

import pytest

from benchmarks.bundle_selection import PROVIDED, canonical, read_freeze, requirement_closure, select
from benchmarks.gpu_bundle import bundled_distributions

ROOT = Path(__file__).resolve().parents[2]
#: `pip list --format=freeze` of a typical CUDA image with the usual scientific stack.
IMAGE = Path(__file__).resolve().parent / "gpu_image_freeze.txt"
#: What that image lacks of mu-eval's dependencies.
MISSING_ON_THE_IMAGE = {"datasets", "jsonlines", "rouge-score", "rouge", "nltk", "defusedxml", "dill", "multiprocess"}


def installed_at_the_pins() -> bool:
    """Whether mu-eval's dependencies here are at constraints.txt's versions, for which the image's expected
    sets below are worked out (other versions, such as the lower bounds, place other requirements on it)."""
    pins = read_freeze(ROOT / "constraints.txt")
    return all(pins.get(name, version) == version for name, version in requirement_closure(["mu-eval"]).items()
               if name != "torch")


at_the_pins = pytest.mark.skipif(
    not installed_at_the_pins(),
    reason="not applicable here: the expected bundles are worked out for constraints.txt's pins, and other "
           "versions place other requirements")
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


def freeze_like_the_image(tmp_path: Path, replace: dict[str, str | None]) -> dict[str, str]:
    """The image's freeze with some versions replaced (None: the line dropped), read back as --have reads it."""
    lines = []
    for line in IMAGE.read_text(encoding="utf-8").splitlines():
        name = canonical(line.partition("==")[0])
        if name in replace:
            if replace[name] is not None:
                lines.append(f"{name}=={replace[name]}")
        else:
            lines.append(line)
    path = tmp_path / "freeze.txt"
    path.write_text("\n".join(lines + ["some-tool @ file:///opt/some_tool-1.0-py3-none-any.whl"]) + "\n")
    return read_freeze(path)


@at_the_pins
def test_for_a_typical_gpu_image_only_what_it_lacks_is_carried():
    present = read_freeze(IMAGE)
    selection = select(present)
    assert set(selection.bundle) == MISSING_ON_THE_IMAGE
    assert not selection.incompatible
    for name, version in selection.bundle.items():
        assert metadata.version(name) == version
    # left out at the image's own versions, which differ from the pins here but satisfy every requirement
    assert {"pyarrow", "scipy", "pandas", "scikit-learn", "pillow", "peft", "accelerate", "numpy"} <= set(
        selection.left_out)
    assert selection.left_out["scipy"] == present["scipy"] == "1.16.3" != metadata.version("scipy")
    assert selection.left_out["torch"] == "2.11.0+cu128"
    # what only the pinned versions of left-out distributions need is not asked of the machine
    assert {"cloudpickle", "narwhals", "python-dateutil", "tzdata"}.isdisjoint(set(selection.bundle) | set(
        selection.left_out))


@at_the_pins
def test_a_present_version_mu_eval_cannot_use_stays_in_the_bundle(tmp_path):
    present = freeze_like_the_image(tmp_path, {"scipy": "1.11.1", "pyarrow": "23.0.0", "fsspec": "2026.10.0"})
    assert "some-tool" not in present  # a "name @ URL" line gives no version
    selection = select(present)
    assert set(selection.bundle) == MISSING_ON_THE_IMAGE | {"scipy", "pyarrow", "fsspec"}
    assert set(selection.incompatible) == {"scipy", "pyarrow", "fsspec"}
    assert "1.11.1" in selection.incompatible["scipy"] and ">=1.13 (by mu-eval)" in selection.incompatible["scipy"]
    assert "(by datasets)" in selection.incompatible["pyarrow"]
    assert "<=2026.9.0" in selection.incompatible["fsspec"]
    assert selection.bundle["scipy"] == metadata.version("scipy")


@at_the_pins
def test_leaving_one_out_spares_only_what_the_machine_keeps(tmp_path):
    # the image's joblib is kept, so the pinned joblib's need for cloudpickle is not the machine's concern
    kept = select(freeze_like_the_image(tmp_path, {"cloudpickle": None}))
    assert set(kept.bundle) == MISSING_ON_THE_IMAGE and "joblib" in kept.left_out
    # without a joblib there, the pinned one is carried, and cloudpickle with it
    carried = select(freeze_like_the_image(tmp_path, {"cloudpickle": None, "joblib": None}))
    assert set(carried.bundle) == MISSING_ON_THE_IMAGE | {"joblib", "cloudpickle"}


def test_a_machine_torch_mu_eval_cannot_use_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="torch: the machine's 2.3.0 does not satisfy >=2.4 \\(by mu-eval\\)"):
        select(freeze_like_the_image(tmp_path, {"torch": "2.3.0"}))
