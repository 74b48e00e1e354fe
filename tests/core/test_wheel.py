"""The built wheel carries `mu_eval.tasks`, `mu_eval.methods` and `mu_eval.attacks`, not only the source tree."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_environment_lists_the_builtin_tasks(tmp_path):
    from mu_eval.plugins import get_registry

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
         str(tmp_path / "dist"), str(PROJECT_ROOT)],
        check=True, capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("mu_eval-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "mu_eval/py.typed" in names  # type checkers read a plugin's use of mu-eval's typed interfaces
    assert "mu_eval/tasks/tofu/task.py" in names and not any(n.startswith("tasks/") for n in names)
    environment = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(environment)], check=True, capture_output=True)
    python = environment / "bin" / "python"
    # Dependencies (torch, transformers, ...) come from this environment; mu-eval itself only from the wheel.
    fresh_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    Path(fresh_site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # From the repository root, before anything is installed: the checkout's own package, the same import path
    from_root = subprocess.run(
        [str(python), "-c", "import mu_eval.tasks.tofu.task as t, mu_eval.attacks.mia as a; print(t.__file__)"],
        capture_output=True, text=True, cwd=PROJECT_ROOT,
    )
    assert from_root.returncode == 0, from_root.stderr
    assert Path(from_root.stdout.strip()).resolve() == (PROJECT_ROOT / "tasks" / "tofu" / "task.py").resolve()
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    located = subprocess.run(
        [str(python), "-c", "import mu_eval.tasks, mu_eval.methods, mu_eval.attacks as a; print(a.__file__)"],
        check=True, capture_output=True, text=True, cwd=outside,
    ).stdout.strip()
    assert located.startswith(fresh_site)
    listing = subprocess.run([str(environment / "bin" / "mu-eval"), "list", "tasks"], capture_output=True,
                             text=True, cwd=outside)
    assert listing.returncode == 0, listing.stderr
    assert "failed to load" not in listing.stderr
    listed = {line.split("\t")[0] for line in listing.stdout.splitlines()}
    registry = get_registry()
    builtin = {name for name, entry in registry.entries["tasks"].items()
               if registry.plugins[entry.plugin].distribution == "mu-eval"}
    assert builtin <= listed


def test_the_editable_install_imports_the_checkout_from_anywhere(tmp_path):
    """The suite runs on an editable install: `mu_eval.tasks` resolves to the top-level folder of this checkout,
    through the package's own directory, from any working directory."""
    located = subprocess.run(
        [sys.executable, "-c", "import mu_eval, mu_eval.tasks.tofu.task as t; print(mu_eval.__file__, t.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout.split()
    assert Path(located[0]).resolve() == (PROJECT_ROOT / "mu_eval" / "__init__.py").resolve()
    assert Path(located[1]).resolve() == (PROJECT_ROOT / "tasks" / "tofu" / "task.py").resolve()
