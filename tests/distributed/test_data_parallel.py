"""Data-parallel evaluation: `torchrun --nproc_per_node 2 -m mu_eval ...` on the CPU (gloo) shares the distinct
requests between the two processes by tokens, answers each once, and the main process writes the report of a
single-process run and caches every answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mu_eval.cli import main
from mu_eval.distributed import share_by_tokens

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "recording_run.py"
sys.path.insert(0, str(HERE))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def launch(arguments: list[str], record_dir: Path) -> subprocess.CompletedProcess:
    """The recording `mu-eval` under torchrun, two processes on the CPU, run twice in them."""
    from launchers import torchrun

    return torchrun([str(SCRIPT), *arguments], MU_EVAL_TEST_RECORD_DIR=str(record_dir))


def answered(record_dir: Path) -> dict[str, list[str]]:
    return {path.stem.removeprefix("answered-"): path.read_text().split()
            for path in sorted(record_dir.glob("answered-*.txt"))}


@pytest.fixture(scope="module")
def runs(tiny_checkpoint, tmp_path_factory, monkeypatch_module):
    """A single-process run here, then two 2-process runs on one answer cache in the same two processes: the
    second finds every answer there."""
    from recording_run import RECORD_DIR_ENV, register

    root = tmp_path_factory.mktemp("data-parallel")
    common = ["--model", str(tiny_checkpoint), "--tasks", "support_qa", "--backend", "recording_hf", "--quiet",
              "--device", "cpu", "--log-samples"]
    register()
    (root / "single").mkdir()
    monkeypatch_module.setenv(RECORD_DIR_ENV, str(root / "single"))
    assert main([*common, "--no-cache", "--output-path", str(root / "single" / "out")]) == 0
    done = launch([*common, "--cache-dir", str(root / "cache"), "--output-path", str(root / "two")], root)
    assert done.returncode == 0, done.stderr[-3000:]
    results = {"single": (root / "single" / "out", root / "single"), "two": (root / "two" / "first", root / "first"),
               "two_cached": (root / "two" / "second", root / "second")}
    found: dict = {name: (json.loads((out / "report.json").read_text()), answered(record), done.stdout)
                   for name, (out, record) in results.items()}
    found["root"] = root
    return found


def test_two_processes_write_the_single_process_report(runs):
    single, _, _ = runs["single"]
    two, _, printed = runs["two"]
    assert two["tasks"] == single["tasks"]  # metrics, per-item values and samples alike
    assert two["model"] == single["model"]
    assert two["engine"]["processes"] == 2 and "processes" not in single["engine"]  # one process: as before
    assert printed.count("report written to") == 2  # once per run, by the main process only


def test_each_distinct_request_is_answered_once_by_one_process(runs):
    single_report, single_answered, _ = runs["single"]
    two_report, two_answered, _ = runs["two"]
    assert set(two_answered) == {"0", "1"}
    first, second = two_answered["0"], two_answered["1"]
    assert first and second and not set(first) & set(second)
    assert len(first) + len(second) == len(set(first) | set(second))  # no process answered one twice
    assert sorted(first + second) == sorted(single_answered["single"])
    engine = two_report["engine"]
    assert engine["answered_by_process"] == [len(first), len(second)]
    assert engine["answered"] == single_report["engine"]["answered"] == len(first) + len(second)


def test_the_main_process_caches_every_processes_answers(runs):
    single, _, _ = runs["single"]
    cached, cached_answered, _ = runs["two_cached"]
    assert cached["tasks"] == single["tasks"]
    assert cached_answered == {}  # nothing left to answer in either process
    assert cached["engine"]["from_cache"] == single["engine"]["distinct"]


def test_a_failing_process_stops_the_others_instead_of_leaving_them_waiting(runs):
    endings = {rank: (runs["root"] / "failing" / f"ending-{rank}.txt").read_text() for rank in (0, 1)}
    assert endings == {0: "status=1", 1: "raised=injected failure"}


def test_requests_are_shared_by_tokens_not_by_count():
    lengths = [400] + [10] * 40  # one long request and many short ones
    shares = share_by_tokens(lengths, 2)
    assert sorted(shares[0] + shares[1]) == list(range(len(lengths)))
    loads = [sum(lengths[i] for i in share) for share in shares]
    assert loads == [400, 400] and len(shares[0]) == 1  # a split by count would give 21 and 20 requests
    assert share_by_tokens(lengths, 2) == shares  # every process computes the same shares
    assert share_by_tokens([5, 5, 5], 4) == [[0], [1], [2], []]


def _write_answers(directory: str, writer: int, barrier) -> None:
    from mu_eval.cache import AnswerCache
    from mu_eval.requests import Score, ScoreResult

    barrier.wait()  # every process opens the new file at once
    cache = AnswerCache(directory, {"model": "shared", "backend": "hf"})
    for batch in range(20):
        cache.put_many({Score(f"writer {writer} batch {batch} item {item}", " x"):
                        ScoreResult((-float(writer),), (True,), (0.0,), (0.0,)) for item in range(25)})
    cache.close()


def test_the_answer_cache_takes_several_writers_at_once(tmp_path):
    import multiprocessing
    import sqlite3

    from mu_eval.cache import AnswerCache
    from mu_eval.requests import Score

    context = multiprocessing.get_context("fork")
    writers = 4
    barrier = context.Barrier(writers)
    workers = [context.Process(target=_write_answers, args=(str(tmp_path), w, barrier)) for w in range(writers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0] * writers
    cache = AnswerCache(tmp_path, {"model": "shared", "backend": "hf"})
    requests = [Score(f"writer {w} batch {b} item {i}", " x") for w in range(writers) for b in range(20)
                for i in range(25)]
    found = cache.get_many(requests)
    assert len(found) == len(requests) and all(found[r].logprobs == (-float(r.context.split()[1]),) for r in requests)
    with sqlite3.connect(cache.path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 1  # one identity row, not four
    cache.close()


def test_a_writer_waits_for_a_long_write_of_another_process(tmp_path):
    """sqlite's default wait is 5 seconds: a rank whose write takes longer (a big batch, a slow shared file
    system) must delay the others, not fail them with 'database is locked'."""
    import sqlite3
    import threading
    import time

    from mu_eval.cache import AnswerCache
    from mu_eval.requests import Score, ScoreResult

    cache = AnswerCache(tmp_path, {"model": "shared", "backend": "hf"})
    holding = threading.Event()

    def long_write() -> None:
        other = sqlite3.connect(cache.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        holding.set()
        time.sleep(6)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=long_write)
    thread.start()
    holding.wait(10)
    started = time.monotonic()
    request = Score("after the long write", " x")
    cache.put_many({request: ScoreResult((-1.0,), (True,), (0.0,), (0.0,))})
    waited = time.monotonic() - started
    thread.join()
    assert waited > 4 and cache.get_many([request])[request].logprobs == (-1.0,)
    cache.close()
