"""Shared fixtures: offline settings, a tiny checkpoint saved to disk, the published benchmark files.

A skipped test is a failed run here unless it declares itself not applicable to this machine (see
`pytest_runtest_makereport`): a suite that reports "passed" with a regression test quietly skipped for a
missing file or package is worse than a red one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BENCHMARK_DATA = PROJECT_ROOT / "tests" / "data"
NOT_APPLICABLE = "not applicable here: "


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own answer cache, so no test sees another's answers."""
    monkeypatch.setenv("MU_EVAL_CACHE_DIR", str(tmp_path_factory.mktemp("answer-cache")))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Turn a skip into a failure unless its reason starts with NOT_APPLICABLE (e.g. a CUDA-only check)."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not reason.removeprefix("Skipped: ").startswith(NOT_APPLICABLE):
            report.outcome = "failed"
            report.longrepr = f"skipped without being marked not applicable: {reason}"
    return report


@pytest.fixture(scope="session")
def benchmark_data() -> Path:
    """The published files in tests/data (see its README); missing files are a failure, never a skip."""
    assert (BENCHMARK_DATA / "README.md").is_file(), f"{BENCHMARK_DATA} is missing: the checkout is incomplete"
    return BENCHMARK_DATA


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A random tiny Llama and a BPE tokenizer trained on support texts, saved like a real checkpoint."""
    from support import TRAINING_TEXTS

    from mu_eval.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model", TRAINING_TEXTS, seed=0, vocab_size=600)


@pytest.fixture(scope="session")
def other_tiny_checkpoint(tmp_path_factory) -> Path:
    """Same architecture and tokenizer data, other random weights."""
    from support import TRAINING_TEXTS

    from mu_eval.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny2") / "model", TRAINING_TEXTS, seed=1, vocab_size=600)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and spinning threads cost a lot on 2 shared cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
