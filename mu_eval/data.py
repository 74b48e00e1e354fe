"""Dataset loading: the Hugging Face hub, or local files of the same schema in a data directory.

A task names its dataset by hub id, config and split; `--data-dir` (or `MU_EVAL_DATA_DIR`) points the same
task at local json, jsonl or parquet files, and then a file it lacks is an error at once (no hub retries)
unless MU_EVAL_ALLOW_HUB is set. `mu-eval data fetch` writes such a directory. Nothing is downloaded at
import time.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mu_eval.cache_location import chosen_cache_dir
from mu_eval.options import OptionError, parse_bool
from mu_eval.plain_json import plain_json_rows

DATA_DIR_ENV = "MU_EVAL_DATA_DIR"
#: Set to a true word (1, true, yes, on) to let a run with a data directory fall back to the hub for a dataset
#: the directory lacks; by default that is an immediate error.
ALLOW_HUB_ENV = "MU_EVAL_ALLOW_HUB"
EXTENSIONS = (".jsonl", ".json", ".parquet")


class DataError(Exception):
    """A dataset could not be found or read; the message names the dataset and the paths looked at."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where one split of a benchmark lives.

    `local_names` are extra relative paths (without extension) tried under the data directory, for
    benchmarks whose original files are named differently from the hub's configs and splits.
    """

    hf_id: str
    config: str | None
    split: str
    local_names: tuple[str, ...] = ()
    required_fields: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        config = f", config {self.config!r}" if self.config else ""
        return f"{self.hf_id!r}{config}, split {self.split!r}"

    def candidate_stems(self) -> list[str]:
        """Relative paths (no extension) looked for under a data directory, most specific first."""
        repo = self.hf_id.split("/")[-1]
        stems = []
        for prefix in (f"{self.hf_id}", repo, ""):
            if not prefix and not self.config:
                continue  # a bare `<split>` file (train.json) could belong to any dataset
            parts = [p for p in (prefix, self.config, self.split) if p]
            stems.append("/".join(parts))
            if self.config:
                stems.append("/".join(p for p in (prefix, self.config) if p))
        stems.extend(self.local_names)
        seen: list[str] = []
        for stem in stems:
            if stem and stem not in seen:
                seen.append(stem)
        return seen


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    return Path(chosen) if chosen else None


def find_local_file(spec: DatasetSpec, data_dir: Path) -> tuple[Path | None, list[Path]]:
    """First existing file for `spec` under `data_dir`, and every path that was looked at."""
    looked: list[Path] = []
    for stem in spec.candidate_stems():
        for extension in EXTENSIONS:
            path = data_dir / f"{stem}{extension}"
            looked.append(path)
            if path.is_file():
                return path, looked
    return None, looked


def read_local_file(path: Path) -> list[dict]:
    """Rows of a json (array or lines), jsonl or parquet file, read through `datasets`.

    JSON arrays of bare strings (MUSE's privleak files) become rows `{"text": ...}`.
    """
    import datasets

    library_log = logging.getLogger("datasets")  # its own account of a bad file comes with a traceback;
    level = library_log.level                     # the DataError below names the file in one line
    library_log.setLevel(logging.CRITICAL)
    try:
        # with --cache-dir, the Arrow files datasets makes from a local file go there too, not to the home folder
        chosen = chosen_cache_dir()
        arrow = {"cache_dir": str(chosen / "datasets")} if chosen is not None else {}
        if path.suffix == ".parquet":
            table = datasets.Dataset.from_parquet(str(path), **arrow)
            return list(table)
        strings = _bare_string_rows(path)
        if strings is not None:
            return datasets.Dataset.from_list(strings).to_list()
        table = datasets.Dataset.from_json(str(path), **arrow)
        return list(table)
    except DataError:
        raise
    except Exception as error:  # datasets raises many error types for malformed files
        rows = plain_json_rows(path)
        if rows is not None:  # a column of mixed types, which older datasets releases refuse
            return rows
        raise DataError(f"cannot read {path}: {type(error).__name__}: {error}") from error
    finally:
        library_log.setLevel(level)


def _bare_string_rows(path: Path) -> list[dict] | None:
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    if not head.startswith(b"["):
        return None
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    if isinstance(data, list) and data and all(isinstance(item, str) for item in data):
        return [{"text": item} for item in data]
    return None


def hub_table(spec: DatasetSpec) -> Any:
    """The split as `datasets` loads it from the hub (a `datasets.Dataset`)."""
    import datasets

    return datasets.load_dataset(spec.hf_id, spec.config, split=spec.split)


def load_from_hub(spec: DatasetSpec) -> list[dict]:
    return list(hub_table(spec))


def hub_allowed(allow_hub: bool | None = None) -> bool:
    """Whether a run with a data directory may go to the hub for what the directory lacks: `allow_hub` when
    given, else the MU_EVAL_ALLOW_HUB environment variable (off by default)."""
    if allow_hub is not None:
        return allow_hub
    value = os.environ.get(ALLOW_HUB_ENV, "").strip()
    if not value:
        return False
    try:
        return parse_bool(value, ALLOW_HUB_ENV)
    except OptionError as error:
        raise DataError(str(error)) from None



def check_fields(rows: Iterable[dict], spec: DatasetSpec, source: str) -> None:
    """Raise a DataError naming the file, the row and the field when a record lacks a required field."""
    for index, row in enumerate(rows):
        for name in spec.required_fields:
            if name not in row or row[name] is None:
                raise DataError(f"{source}: row {index} lacks field {name!r} (dataset {spec.describe()})")


#: Rows already read, by (split, data directory, hub switch), while `remember_rows` is active.
_remembered: ContextVar[dict[tuple, list[dict]] | None] = ContextVar("remembered_rows", default=None)


@contextmanager
def remember_rows() -> Iterator[None]:
    """Within the block each split is read once; every later read gets its own copy of the rows (a sweep over
    checkpoints reads the same data for every model, and a task may change the rows it is given)."""
    token = _remembered.set({})
    try:
        yield
    finally:
        _remembered.reset(token)


def load_rows(
    spec: DatasetSpec, data_dir: str | os.PathLike | None = None, allow_hub: bool | None = None
) -> list[dict]:
    """Rows of one split: from the data directory when one is set (a file it lacks is an error at once, unless
    the hub is allowed: `allow_hub`, or MU_EVAL_ALLOW_HUB), else from the hub."""
    remembered = _remembered.get()
    if remembered is None:
        return _read_rows(spec, data_dir, allow_hub)
    key = (spec, str(resolve_data_dir(data_dir)), hub_allowed(allow_hub))
    if key not in remembered:
        remembered[key] = _read_rows(spec, data_dir, allow_hub)
    return copy.deepcopy(remembered[key])


def _read_rows(spec: DatasetSpec, data_dir: str | os.PathLike | None, allow_hub: bool | None) -> list[dict]:
    directory = resolve_data_dir(data_dir)
    looked: list[Path] = []
    if directory is not None:
        path, looked = find_local_file(spec, directory)
        if path is not None:
            rows = read_local_file(path)
            check_fields(rows, spec, str(path))
            return rows
        if not hub_allowed(allow_hub):
            where = ", ".join(str(p) for p in looked)
            raise DataError(
                f"dataset {spec.describe()} is not available in the data directory {directory} (looked at {where}); "
                f"on a machine with hub access, `mu-eval data fetch TASK --to DIR` writes every file a task reads, "
                f"or set {ALLOW_HUB_ENV}=1 to try the hub"
            )
    try:
        rows = load_from_hub(spec)
    except Exception as error:
        where = ", ".join(str(p) for p in looked) if looked else f"no data directory set (--data-dir or {DATA_DIR_ENV})"
        raise DataError(
            f"dataset {spec.describe()} is not available: hub load failed ({type(error).__name__}) "
            f"and no local file found; looked at: {where}"
        ) from error
    check_fields(rows, spec, f"hub dataset {spec.hf_id}")
    return rows
