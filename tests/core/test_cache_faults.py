"""A broken answer cache never stops a run nor changes a number: each fault below, made to the cache file of a
finished run, leaves a rerun with the clean run's values, one warning, and the affected answers counted in
the report's `engine.cache_faults`."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest
from support import QATask, register_support_task

import mu_eval
from mu_eval.file_hashes import MEMO_FILE_NAME


def run(model, cache_dir, **options):
    return mu_eval.evaluate(str(model), [register_support_task()], limit=3, progress=False, cache_dir=cache_dir,
                            **options)


def values(report):
    section = report["tasks"][register_support_task()]
    return section["metrics"], section["items"]


def cache_file(cache_dir):
    (path,) = (p for p in cache_dir.iterdir() if p.suffix == ".sqlite" and p.name != MEMO_FILE_NAME)
    return path


def with_rows(change):
    def fault(path):
        connection = sqlite3.connect(path)
        rows = connection.execute("SELECT key, kind, answer FROM answers").fetchall()
        for key, kind, answer in rows:
            new = change(kind, json.loads(answer))
            if new is not None:
                connection.execute("UPDATE answers SET kind=?, answer=? WHERE key=?", (*new, key))
        connection.commit()
        connection.close()
    return fault


def score_field(name, value):
    return with_rows(lambda kind, data: (kind, json.dumps({**data, name: value})) if kind == "score" else None)


def replace_file(content):
    def fault(path):
        path.unlink()
        path.write_bytes(content)
    return fault


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def folder_in_place(path):
    path.unlink()
    (path / "inner").mkdir(parents=True)


def other_schema(path):
    path.unlink()
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE answers (id INTEGER, payload BLOB)")
    connection.commit()
    connection.close()


FILE_FAULTS = {
    "garbage": replace_file(os.urandom(4096)),
    "empty-header": replace_file(b"SQLite format 3\x00" + b"\x00" * 84),
    "truncated": truncate,
    "folder-in-place": folder_in_place,
    "other-schema": other_schema,
}

ROW_FAULTS = {
    "answer-not-json": with_rows(lambda kind, data: (kind, "{not json")),
    "unknown-kind": with_rows(lambda kind, data: ("telepathy", json.dumps(data))),
    "kind-of-another-request": with_rows(lambda kind, data: ("generate" if kind == "score" else "score",
                                                              json.dumps(data))),
    "wrong-shape": score_field("logprobs", "abc"),
    "numbers-as-strings": score_field("logprobs", ["-1.0", "-2.0"]),
    "per-token-lengths-differ": score_field("greedy", [True]),
    "missing-field": with_rows(lambda kind, data: (kind, json.dumps({"nothing": 1}))),
    "a-list-not-an-object": with_rows(lambda kind, data: (kind, "[1, 2]")),
}


@pytest.fixture(scope="module")
def clean(tiny_checkpoint, tmp_path_factory):
    """A clean run, and the cache folder it filled."""
    cache_dir = tmp_path_factory.mktemp("clean-cache")
    report = run(tiny_checkpoint, cache_dir)
    assert report["engine"]["from_cache"] == 0 and report["engine"]["cache_faults"] == 0
    return report, cache_dir


@pytest.mark.parametrize("fault", sorted(FILE_FAULTS) + sorted(ROW_FAULTS))
def test_a_corrupted_cache_gives_the_clean_numbers_with_a_warning(fault, clean, tiny_checkpoint, tmp_path):
    report, clean_dir = clean
    cache_dir = shutil.copytree(clean_dir, tmp_path / "cache")
    (FILE_FAULTS | ROW_FAULTS)[fault](cache_file(cache_dir))
    with pytest.warns(UserWarning, match="answer cache"):
        rerun = run(tiny_checkpoint, cache_dir)
    assert values(rerun) == values(report)
    distinct = rerun["engine"]["distinct"]
    if fault in ROW_FAULTS:  # the rows read back wrong were answered again, and counted
        assert rerun["engine"]["cache_faults"] > 0
        assert rerun["engine"]["from_cache"] + rerun["engine"]["answered"] == distinct
    else:  # the file was moved aside: every answer computed again into a fresh cache
        assert rerun["engine"]["answered"] == distinct
        assert list(cache_dir.glob("*.unusable-1"))
        assert "moved to" in rerun["engine"]["cache_warnings"][0]
    again = run(tiny_checkpoint, cache_dir)  # and the cache serves the next run
    assert again["engine"]["from_cache"] == distinct and values(again) == values(report)


def test_an_unwritable_cache_is_a_warning_and_the_answers_not_stored_are_counted(clean, tiny_checkpoint, tmp_path):
    report, _ = clean
    cache_dir = tmp_path / "cache"
    run(tiny_checkpoint, cache_dir)
    path = cache_file(cache_dir)
    connection = sqlite3.connect(path)  # every write now fails inside SQLite, as on a full or read-only disk
    connection.execute("CREATE TRIGGER refuse BEFORE INSERT ON answers BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    connection.execute("DELETE FROM answers")
    connection.commit()
    connection.close()
    with pytest.warns(UserWarning, match="cannot be written"):
        rerun = run(tiny_checkpoint, cache_dir)
    assert values(rerun) == values(report)
    assert rerun["engine"]["cache_faults"] == rerun["engine"]["distinct"]


def test_a_cache_folder_that_cannot_be_created_is_a_warning(clean, tiny_checkpoint, tmp_path, monkeypatch):
    report, _ = clean
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("MU_EVAL_CACHE_DIR", str(blocker / "cache"))  # the default folder, under a file
    with pytest.warns(UserWarning, match="without it"):
        rerun = mu_eval.evaluate(str(tiny_checkpoint), [register_support_task()], limit=3, progress=False)
    assert values(rerun) == values(report)
    assert rerun["engine"]["cache_faults"] == rerun["engine"]["distinct"]


def test_a_corrupted_cache_through_the_cli_warns_in_one_line_and_exits_0(clean, tiny_checkpoint, tmp_path, capsys):
    from mu_eval.cli import main

    report, clean_dir = clean
    cache_dir = shutil.copytree(clean_dir, tmp_path / "cache")
    FILE_FAULTS["garbage"](cache_file(cache_dir))
    out = tmp_path / "out"
    status = main(["--model", str(tiny_checkpoint), "--tasks", register_support_task(), "--limit", "3",
                   "--cache-dir", str(cache_dir), "--output-path", str(out), "--quiet"])
    assert status == 0
    written = json.loads((out / "report.json").read_text())
    assert written["engine"]["answered"] == written["engine"]["distinct"]
    assert len(written["engine"]["cache_warnings"]) == 1 and "unusable" in written["engine"]["cache_warnings"][0]
    assert (written["tasks"][register_support_task()]["metrics"] ==
            report["tasks"][register_support_task()]["metrics"])


class DeletesTheCache(QATask):
    """Builds the support task's requests after deleting the run's cache folder, as a cleanup job would."""

    name = "deletes_the_cache"
    folder = ""

    def build_requests(self, ctx):
        shutil.rmtree(self.folder)
        return super().build_requests(ctx)


def test_a_cache_folder_deleted_mid_run_changes_no_number(clean, tiny_checkpoint, tmp_path):
    cache_dir = tmp_path / "cache"
    task = DeletesTheCache()
    task.folder = str(cache_dir)
    reports = []
    for _ in range(2):
        with pytest.warns(UserWarning, match="cannot be written"):  # SQLite cannot write beside a deleted file
            reports.append(mu_eval.evaluate(str(tiny_checkpoint), [task], limit=3, progress=False,
                                            cache_dir=cache_dir))
    reference, _ = clean
    for report in reports:
        assert report["tasks"][task.name]["metrics"] == reference["tasks"][register_support_task()]["metrics"]
        assert report["engine"]["answered"] == report["engine"]["distinct"]  # nothing served from a deleted file
        assert report["engine"]["cache_faults"] == report["engine"]["distinct"]  # none stored, all counted
