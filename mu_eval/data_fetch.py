"""Offline data folders: snapshot exactly the dataset files some tasks read, and check a folder against them.

Which files a task reads is found by running it: its `build_requests` and the optional data hooks (what
methods and attacks draw: `unlearning_data`, `unlearning_folds`, `membership_requests`, `forget_facts`,
`retain_facts`) run on a context whose `load` records every `DatasetSpec` asked for. `fetch` answers each
from the hub through `datasets` and writes it where `--data-dir` looks first
(`<hub id>/<config>/<split>.parquet`), then reads it back as a run will; `check` answers each from the folder
alone. The folder's manifest (`mu-eval-data.json`) lists every file with its dataset, config, split, rows,
size and sha256, and which tasks read it.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mu_eval.backend import PLAIN_PROMPT
from mu_eval.data import DataError, DatasetSpec, check_fields, find_local_file, hub_table, read_local_file
from mu_eval.evaluation import instantiate_tasks
from mu_eval.file_hashes import file_sha256
from mu_eval.inputs import InputStore
from mu_eval.seeding import seed_everything
from mu_eval.task import Task, TaskContext

MANIFEST_NAME = "mu-eval-data.json"
MANIFEST_FORMAT = 1
#: The task hooks besides `build_requests` that read data (each optional: NotImplementedError = none).
DATA_HOOKS = ("unlearning_data", "unlearning_folds", "membership_requests", "forget_facts", "retain_facts")
SEED = 1234


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def snapshot_path(spec: DatasetSpec) -> str:
    """Where `fetch` writes a split, relative to the folder: the first name `--data-dir` looks for."""
    return f"{spec.candidate_stems()[0]}.parquet"


def walk_task(
    task: Task, load: Callable[[DatasetSpec], list[dict]], explained: type[BaseException] | None = None
) -> dict[str, str]:
    """Run the task's data-reading hooks on a context that loads through `load`, and return the hooks that
    raised, with the error. A hook that raises is noted, not fatal, so that one missing dataset does not hide
    the others; an error caused by an `explained` one (the loader's own, already recorded) is not noted."""
    ctx = TaskContext(load=load, chat=lambda question: PLAIN_PROMPT.format(question=question),
                      uses_chat_template=False, seed=SEED, options=dict(task.options), inputs=InputStore())
    failed: dict[str, str] = {}
    for hook in ("build_requests", *DATA_HOOKS):
        seed_everything(SEED)
        try:
            getattr(task, hook)(ctx)
        except NotImplementedError:
            continue
        except Exception as error:  # a task may raise anything for data it cannot read; the message is kept
            if explained is None or not _caused_by(error, explained):
                failed[hook] = one_line(f"{type(error).__name__}: {error}")
    return failed


def one_line(text: str, limit: int = 400) -> str:
    """A message on one line (hub errors span several), cut to `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read the manifest {path}: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{path} is not a mu-eval data manifest of format {MANIFEST_FORMAT}")
    return manifest


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Atomically: a temporary file in the folder, then a rename."""
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{MANIFEST_NAME}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(manifest, out, indent=1, sort_keys=True)
            out.write("\n")
        os.replace(temporary, directory / MANIFEST_NAME)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- fetch -------------------------------------------------------------------------------------------------------
@dataclass
class FetchResult:
    """Per task the files it read (paths relative to the folder) and the hooks that failed."""

    files: dict[str, list[str]]
    failed: dict[str, dict[str, str]]
    manifest: dict[str, Any]


class _Fetcher:
    """The recording loader of `fetch`: each split from the hub once, written, read back as a run reads it."""

    def __init__(self, directory: Path, manifest: dict[str, Any], log: Callable[[str], None]) -> None:
        self.directory = directory
        self.manifest = manifest
        self.log = log
        self.rows: dict[str, list[dict]] = {}
        self.task_files: list[str] = []

    def load(self, spec: DatasetSpec) -> list[dict]:
        relative = snapshot_path(spec)
        if relative not in self.rows:
            self.rows[relative] = self._fetch(spec, relative)
        if relative not in self.task_files:
            self.task_files.append(relative)
        return self.rows[relative]

    def _fetch(self, spec: DatasetSpec, relative: str) -> list[dict]:
        try:
            table = hub_table(spec)
        except Exception as error:  # `datasets` raises many types for unreachable, gated or unknown datasets
            message = f"dataset {spec.describe()}: hub load failed: {type(error).__name__}: {error}"
            raise DataError(one_line(message)) from error
        path = self.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        table.to_parquet(str(temporary))
        os.replace(temporary, path)
        found, _ = find_local_file(spec, self.directory)
        if found != path:
            raise DataError(f"{found} would be read instead of the fetched {path} (an earlier name of the same "
                            f"dataset {spec.describe()}): remove it and fetch again")
        rows = read_local_file(path)
        check_fields(rows, spec, str(path))
        self.manifest["files"][relative] = {
            "dataset": spec.hf_id, "config": spec.config, "split": spec.split, "rows": len(rows),
            "bytes": path.stat().st_size, "sha256": file_sha256(path),
            "fingerprint": getattr(table, "_fingerprint", None),
        }
        self.log(f"  {relative}: {len(rows)} rows")
        return rows


def fetch(
    tasks: Sequence[str], directory: str | os.PathLike, task_options: dict[str, dict] | None = None,
    log: Callable[[str], None] = print,
) -> FetchResult:
    """Write every dataset split the tasks read into `directory` (kept across calls: a second fetch adds to
    the folder and its manifest) and return what each task read."""
    import datasets

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder) or {"format": MANIFEST_FORMAT, "files": {}, "tasks": {}}
    instances = instantiate_tasks(list(tasks), task_options)
    fetcher = _Fetcher(folder, manifest, log)
    result = FetchResult(files={}, failed={}, manifest=manifest)
    try:
        for name, task in instances.items():
            log(f"{name}:")
            fetcher.task_files = []
            failed = walk_task(task, fetcher.load)
            result.files[name] = list(fetcher.task_files)
            result.failed[name] = failed
            manifest["tasks"][name] = {"options": dict(task.options), "files": list(fetcher.task_files),
                                       "failed_hooks": failed}
    finally:
        for relative, entry in manifest["files"].items():
            entry["tasks"] = sorted(n for n, t in manifest["tasks"].items() if relative in t["files"])
        manifest.update(mu_eval_version=_version("mu-eval"), datasets_version=datasets.__version__,
                        updated=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        write_manifest(folder, manifest)
    return result


# -- check -------------------------------------------------------------------------------------------------------
@dataclass
class FileStatus:
    """One dataset split a task reads, as the folder has it."""

    dataset: str
    path: str | None  # relative to the folder; None when missing
    state: str  # "ok" | "changed" | "unlisted" | "missing" | "unreadable"
    detail: str = ""


@dataclass
class CheckResult:
    statuses: dict[str, list[FileStatus]]
    failed: dict[str, dict[str, str]]
    has_manifest: bool

    @property
    def complete(self) -> bool:
        """Every split present and readable, none changed since the manifest was written, and every hook ran."""
        return (all(s.state in ("ok", "unlisted") for statuses in self.statuses.values() for s in statuses)
                and not any(self.failed.values()))


class RecordedDataError(DataError):
    """A split the checked folder lacks or cannot read, recorded by the checker before it is raised (a hook that
    fails because of it is not reported twice)."""


class _Checker:
    """The recording loader of `check`: the folder alone, as a run with `--data-dir` reads it."""

    def __init__(self, directory: Path, manifest: dict[str, Any] | None) -> None:
        self.directory = directory
        self.manifest = manifest
        self.statuses: list[FileStatus] = []

    def load(self, spec: DatasetSpec) -> list[dict]:
        path, looked = find_local_file(spec, self.directory)
        if path is None:
            self._note(FileStatus(spec.describe(), None, "missing", f"looked for {snapshot_path(spec)} and "
                                  f"{len(looked) - 1} other names"))
            raise RecordedDataError(f"dataset {spec.describe()} is not in {self.directory}")
        relative = path.relative_to(self.directory).as_posix()
        try:
            rows = read_local_file(path)
            check_fields(rows, spec, str(path))
        except DataError as error:
            self._note(FileStatus(spec.describe(), relative, "unreadable", str(error)))
            raise RecordedDataError(str(error)) from error
        self._note(self.status_of(spec.describe(), relative, rows=len(rows)))
        return rows

    def status_of(self, dataset: str, relative: str, rows: int | None = None) -> FileStatus:
        """The file against its manifest entry (hash and rows), or "unlisted" without one."""
        path = self.directory / relative
        if not path.is_file():
            return FileStatus(dataset, None, "missing", f"{relative} is listed in the manifest")
        entry = (self.manifest or {}).get("files", {}).get(relative)
        if entry is None:
            return FileStatus(dataset, relative, "unlisted", f"{rows} rows" if rows is not None else "")
        if file_sha256(path) != entry["sha256"]:
            return FileStatus(dataset, relative, "changed", "sha256 differs from the manifest's")
        return FileStatus(dataset, relative, "ok", f"{entry['rows']} rows, sha256 matches")

    def _note(self, status: FileStatus) -> None:
        if all((s.dataset, s.path) != (status.dataset, status.path) for s in self.statuses):
            self.statuses.append(status)


def check(
    directory: str | os.PathLike, tasks: Sequence[str] | None = None, task_options: dict[str, dict] | None = None
) -> CheckResult:
    """What the folder holds of every split the tasks read (the manifest's tasks when none are named): present
    (and whether its hash matches the manifest), missing, unreadable. A task's hooks stop at the first split
    it lacks; the manifest's list of that task's files covers the splits after it."""
    folder = Path(directory)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist")
    manifest = read_manifest(folder)
    if tasks is None:
        if manifest is None:
            raise DataError(f"{folder} has no {MANIFEST_NAME}: name the tasks to check with --tasks")
        tasks = list(manifest["tasks"])
    result = CheckResult(statuses={}, failed={}, has_manifest=manifest is not None)
    for name, task in instantiate_tasks(list(tasks), task_options).items():
        checker = _Checker(folder, manifest)
        failed = walk_task(task, checker.load, explained=RecordedDataError)
        listed = (manifest or {}).get("tasks", {}).get(name, {}).get("files", [])
        seen = {s.path for s in checker.statuses}
        for relative in listed:
            if relative not in seen:
                entry = manifest["files"].get(relative, {}) if manifest else {}
                dataset = DatasetSpec(entry.get("dataset", "?"), entry.get("config"), entry.get("split", "?"))
                checker._note(checker.status_of(dataset.describe(), relative))
        result.statuses[name] = checker.statuses
        result.failed[name] = failed
    return result
