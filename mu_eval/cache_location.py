"""Where mu-eval keeps what it caches on disk (answers, weight-file hashes)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

CACHE_DIR_ENV = "MU_EVAL_CACHE_DIR"
#: The run's --cache-dir, while a run that named one is going: every cache file of the run goes there.
_RUN_CACHE_DIR: ContextVar[Path | None] = ContextVar("mu_eval_run_cache_dir", default=None)


@contextmanager
def run_cache_dir(directory: str | os.PathLike | None) -> Iterator[None]:
    """Within the block, `default_cache_dir()` is `directory` (when given): the answers and the weight-file
    hash memo of a run with `--cache-dir` both live there, and nothing is written to the home folder."""
    if directory is None:
        yield
        return
    token = _RUN_CACHE_DIR.set(Path(directory))
    try:
        yield
    finally:
        _RUN_CACHE_DIR.reset(token)


def chosen_cache_dir() -> Path | None:
    """The running evaluation's --cache-dir, None when it named none."""
    return _RUN_CACHE_DIR.get()


def default_cache_dir() -> Path:
    """The running evaluation's --cache-dir, else `MU_EVAL_CACHE_DIR`, else `$XDG_CACHE_HOME/mu-eval`, else
    `~/.cache/mu-eval`."""
    run_directory = _RUN_CACHE_DIR.get()
    if run_directory is not None:
        return run_directory
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mu-eval"
