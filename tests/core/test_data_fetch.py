"""`mu-eval data fetch` and `mu-eval data check` against a stand-in hub: dataset repositories served from disk by
a real HTTP server on 127.0.0.1, which `datasets` and `huggingface_hub` reach through HF_ENDPOINT in a child
process (the libraries read their endpoint and offline switch when imported). Then runs on the fetched folder
with the hub out of reach, the check's verdicts on a complete, a damaged and an unlisted folder, and the
immediate error for a split a data directory lacks."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hub_standin import LocalHub, write_repo

import mu_eval
from mu_eval.cli import main
from mu_eval.data import DataError, DatasetSpec, load_rows
from mu_eval.data_fetch import MANIFEST_NAME
from mu_eval.tasks.synthetic_profiles.generator import build_benchmark

TASKS = ("tofu_forget01", "wmdp_bio")
WMDP_ROWS = [{"question": f"Which protein matters in case {i}?", "choices": ["size", "charge", "shape", "speed"],
              "answer": i % 4} for i in range(6)]
CORPUS = [{"title": f"t{i}", "text": f"Document {i} about viral proteins and their charge. " * 3} for i in range(4)]
WIKITEXT = [{"text": f" = Section {i} = \n The river runs through the valley number {i} . \n"} for i in range(5)]
#: What the two tasks read, from their docs: TOFU's evaluation sets and the unlearning splits of forget01;
#: WMDP-bio's questions, and the RMU corpora its unlearning data draws on (bio forget corpus, wikitext).
EXPECTED = {
    *(("locuslab/TOFU", config, "train") for config in (
        "forget01_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed", "holdout01",
        "forget01", "retain99")),
    ("cais/wmdp", "wmdp-bio", "test"), ("cais/wmdp-bio-forget-corpus", None, "train"),
    ("Salesforce/wikitext", "wikitext-2-raw-v1", "test"),
}


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory) -> Path:
    """Repositories with more than the tasks read: every TOFU config, WMDP chem, a wikitext train split."""
    root = tmp_path_factory.mktemp("hub")
    write_repo(root, "locuslab/TOFU", {config: {"train": rows} for config, rows in build_benchmark(10, 3).items()})
    write_repo(root, "cais/wmdp", {"wmdp-bio": {"test": WMDP_ROWS}, "wmdp-chem": {"test": WMDP_ROWS[:2]}})
    write_repo(root, "cais/wmdp-bio-forget-corpus", {None: {"train": CORPUS}})
    write_repo(root, "Salesforce/wikitext", {"wikitext-2-raw-v1": {"test": WIKITEXT, "train": WIKITEXT[:2]}})
    return root


def hub_environment(hub: LocalHub, home: Path) -> dict[str, str]:
    return {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0",
            "HF_HOME": str(home), "HF_DATASETS_CACHE": str(home / "datasets"), "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost"}


@pytest.fixture(scope="module")
def fetched(hub_root, tmp_path_factory):
    """`mu-eval data fetch tofu_forget01 wmdp_bio --to DIR` in a child process pointed at the stand-in hub."""
    folder = tmp_path_factory.mktemp("offline") / "data"
    with LocalHub(hub_root) as hub:
        done = subprocess.run([sys.executable, "-m", "mu_eval.cli", "data", "fetch", *TASKS, "--to", str(folder)],
                              env=hub_environment(hub, tmp_path_factory.mktemp("hf-home")), capture_output=True,
                              text=True, timeout=600)
        requests = list(hub.requests)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, done.stdout, requests


def source_rows(hub_root: Path, dataset: str, config: str | None, split: str) -> list[dict]:
    """The served rows as a table has them: a key some rows lack is None there (one schema per split)."""
    path = hub_root / dataset / "data" / (config or "default") / f"{split}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    keys = {key for row in rows for key in row}
    return [{key: row.get(key) for key in keys} for row in rows]


def test_fetch_writes_exactly_the_splits_the_tasks_read_with_a_manifest(fetched, hub_root):
    folder, stdout, requests = fetched
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    entries = manifest["files"]
    assert {(e["dataset"], e["config"], e["split"]) for e in entries.values()} == EXPECTED
    for relative, entry in entries.items():
        path = folder / relative
        config = f"{entry['config']}/" if entry["config"] else ""
        assert relative == f"{entry['dataset']}/{config}{entry['split']}.parquet"
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["bytes"] == path.stat().st_size
        expected = source_rows(hub_root, entry["dataset"], entry["config"], entry["split"])
        assert entry["rows"] == len(expected)
        # a run with --data-dir reads back exactly the hub's rows
        assert load_rows(DatasetSpec(entry["dataset"], entry["config"], entry["split"]), folder) == expected
    assert set(manifest["tasks"]) == set(TASKS)
    assert {entries[f]["dataset"] for f in manifest["tasks"]["wmdp_bio"]["files"]} == {
        "cais/wmdp", "cais/wmdp-bio-forget-corpus", "Salesforce/wikitext"}
    assert all(task["failed_hooks"] == {} for task in manifest["tasks"].values())
    # configs no task reads were never downloaded (`datasets` downloads every split of a config it loads, but
    # only the split read is written)
    downloads = {path for method, path in requests if method == "GET" and "/resolve/" in path}
    assert any(path.endswith("data/forget01/train.jsonl") for path in downloads)
    assert not any("forget05" in path or "wmdp-chem" in path for path in downloads)
    written = {p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet")}
    assert written == set(entries)
    assert f"10 files, {sum(e['rows'] for e in entries.values())} rows in {folder}" in stdout


def test_runs_on_the_fetched_folder_need_no_hub(fetched, tiny_checkpoint):
    """Evaluation and an unlearning method (which reads the training splits) on the folder alone; this
    process has the hub switched off."""
    folder = fetched[0]
    report = mu_eval.evaluate(str(tiny_checkpoint), list(TASKS), task_options={"tofu_forget01": {"max_new_tokens": 2}},
                              method="grad_ascent", method_options={"steps": 1}, data_dir=folder, limit=2,
                              use_cache=False, progress=False)
    assert report.tasks["tofu_forget01"]["metrics"]["forget_prob"]["n"] == 2
    assert report.tasks["wmdp_bio"]["metrics"]["acc"]["n"] == 2


def test_check_says_what_is_present_missing_or_changed(fetched, tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(fetched[0], folder)
    assert main(["data", "check", str(folder), "--tasks", ",".join(TASKS)]) == 0
    out = capsys.readouterr().out
    assert out.count("  ok ") == 10 and out.rstrip().endswith(": 10 present: complete")
    assert main(["data", "check", str(folder)]) == 0  # the manifest's tasks
    capsys.readouterr()

    # a file rewritten with other rows, and a file deleted: the run stops at it, the manifest names the rest
    import datasets

    changed = folder / "locuslab/TOFU/holdout01/train.parquet"
    datasets.Dataset.from_list([{"question": "q", "answer": "a"}]).to_parquet(str(changed))
    (folder / "locuslab/TOFU/retain_perturbed/train.parquet").unlink()
    assert main(["data", "check", str(folder), "--tasks", "tofu_forget01"]) == 1
    out = capsys.readouterr().out
    assert "  changed    locuslab/TOFU/holdout01/train.parquet" in out
    assert "sha256 differs from the manifest's" in out
    assert "  missing    'locuslab/TOFU', config 'retain_perturbed', split 'train'" in out
    assert out.rstrip().endswith("5 present, 1 missing, 1 changed: incomplete")

    # without the manifest: what is there, unhashed
    (folder / MANIFEST_NAME).unlink()
    assert main(["data", "check", str(folder), "--tasks", "wmdp_bio"]) == 0
    out = capsys.readouterr().out
    assert "not in the manifest" in out and out.rstrip().endswith("hashes not checked")
    assert main(["data", "check", str(folder)]) == 2
    assert f"has no {MANIFEST_NAME}" in capsys.readouterr().err


def test_a_split_the_data_directory_lacks_is_an_error_at_once_unless_the_hub_is_allowed(hub_root, tmp_path):
    """Without MU_EVAL_ALLOW_HUB the hub is not asked at all (it used to retry for about 40 s per config)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"is not available in the data directory .*mu-eval data fetch TASK --to DIR"):
        load_rows(DatasetSpec("cais/wmdp", "wmdp-bio", "test"), empty)
    script = ("from mu_eval.data import load_rows, DatasetSpec\n"
              f"print(len(load_rows(DatasetSpec('cais/wmdp', 'wmdp-bio', 'test'), {str(empty)!r})))\n")
    with LocalHub(hub_root) as hub:
        environment = hub_environment(hub, tmp_path / "hf-home")
        refused = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True,
                                 timeout=300)
        asked = len(hub.requests)
        allowed = subprocess.run([sys.executable, "-c", script], env={**environment, "MU_EVAL_ALLOW_HUB": "1"},
                                 capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "is not available in the data directory" in refused.stderr
    assert asked == 0
    assert allowed.returncode == 0 and allowed.stdout.strip() == str(len(WMDP_ROWS)), allowed.stderr[-2000:]
    assert len(hub.requests) > 0
