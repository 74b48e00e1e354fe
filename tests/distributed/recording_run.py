"""Run by the data-parallel tests, in one process or under torchrun: the `mu-eval` command with a backend
that records, per process, the key of every request it answers (a real HF backend, answering as usual)."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support.py

import mu_eval  # noqa: E402
from mu_eval.backends.hf import HFBackend  # noqa: E402
from mu_eval.cache import request_key  # noqa: E402
from mu_eval.cli import main  # noqa: E402
from mu_eval.plugins import get_registry  # noqa: E402

RECORD_DIR_ENV = "MU_EVAL_TEST_RECORD_DIR"
FAIL_RANK_ENV = "MU_EVAL_TEST_FAIL_RANK"


class RecordingBackend(HFBackend):
    name = "recording_hf"

    def answer(self, kind, batch):
        if FAIL_RANK_ENV in os.environ and os.environ[FAIL_RANK_ENV] == os.environ.get("RANK"):
            raise RuntimeError("injected failure")
        folder = Path(os.environ[RECORD_DIR_ENV])
        with (folder / f"answered-{os.environ.get('RANK', 'single')}.txt").open("a") as stream:
            stream.writelines(f"{request_key(request)}\n" for request in batch)
        return super().answer(kind, batch)


def register() -> None:
    from support import register_support_task

    register_support_task()
    registry = get_registry()
    if RecordingBackend.name not in registry.entries["backends"]:
        module = types.ModuleType("recording_plugin")
        module.register_backends = mu_eval.hookimpl(lambda register: register(RecordingBackend))
        registry.add_plugin(module, "recording_plugin")


def run_twice(arguments: list[str]) -> int:
    """The same command twice in the same processes, recording into `first/` and `second/` and writing the
    reports to OUTPUT/first and OUTPUT/second (OUTPUT: the value of --output-path); then once more with
    process 1 failing, writing how each process ended to failing/ending-RANK.txt."""
    root = Path(os.environ[RECORD_DIR_ENV])
    output = arguments.index("--output-path") + 1
    for name in ("first", "second"):
        (root / name).mkdir(exist_ok=True)
        os.environ[RECORD_DIR_ENV] = str(root / name)
        changed = list(arguments)
        changed[output] = str(Path(arguments[output]) / name)
        status = main(changed)
        if status:
            return status
    # a third time without the cache, process 1 failing: both processes stop, neither waits for the other
    os.environ[FAIL_RANK_ENV] = "1"
    (root / "failing").mkdir(exist_ok=True)
    os.environ[RECORD_DIR_ENV] = str(root / "failing")
    changed = [a for a in arguments if a != "--cache-dir"]
    changed[changed.index(arguments[arguments.index("--cache-dir") + 1])] = "--no-cache"
    changed[changed.index("--output-path") + 1] = str(Path(arguments[output]) / "failing")
    try:
        ending = f"status={main(changed)}"
    except RuntimeError as error:
        ending = f"raised={error}"
    (root / "failing" / f"ending-{os.environ['RANK']}.txt").write_text(ending)  # printed lines may interleave
    return 0


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    register()
    sys.exit(run_twice(sys.argv[1:]))
