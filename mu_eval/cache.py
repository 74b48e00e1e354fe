"""On-disk answer cache, one SQLite file per model identity.

Keying by model identity (weights hash, revision, adapter, dtype, quantization, backend and its answer
version, model args, tokenizer, chat template, config, library versions) means a second model, or the same
model under settings that change answers, can never be served the first one's answers; keying by the full
request means any change to a prompt is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mu_eval.identity import identity_key
from mu_eval.requests import RESULT_TYPES, Request, Result

#: (field, value) pairs left out of a request's key: defaults of fields added after answers were cached.
OMITTED_DEFAULTS = (("truncation", None), ("vocab_stats", False))


#: How long a process waits for another one's write to the same cache file before giving up.
LOCK_TIMEOUT_S = 120.0


def request_key(request: Request) -> str:
    """The request's fields and kind, hashed; a `truncation` left at None and a `vocab_stats` left False are
    omitted, so that the keys of requests from before those fields existed still find their answers (an
    answer from then carries the vocabulary statistics, which such a request does not read)."""
    fields = {name: value for name, value in asdict(request).items() if (name, value) not in OMITTED_DEFAULTS}
    payload = json.dumps({"kind": request.kind, **fields}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class AnswerCache:
    """Answers of one model, stored by request key.

    The cache never stops a run: a file that is not a cache (garbage, truncated, another schema, a folder in
    its place) is moved aside and started afresh; a row that does not read back as an answer of its request's
    kind is answered again; a folder or disk that refuses writes (read-only, full, deleted mid-run) turns the
    cache off for the rest of the run. Each is one warning, and `faults` counts the answers affected (read
    from no cache entry, or not stored), which the report records.
    """

    def __init__(self, directory: str | os.PathLike, identity: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.identity = identity
        self.path = self.directory / f"{identity_key(identity)}.sqlite"
        self.faults = 0
        #: the warnings given, as the report records them
        self.notes: list[str] = []
        self.connection: sqlite3.Connection | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.connection = self._open()
        except (OSError, sqlite3.Error) as error:
            if not self._set_aside(error):
                return
            try:
                self.connection = self._open()
            except (OSError, sqlite3.Error) as second:
                self._give_up("cannot be opened", second)

    def _open(self) -> sqlite3.Connection:
        if self.path.exists() and not self.path.is_file():
            raise sqlite3.DatabaseError("a folder or special file is in the cache file's place")
        # several processes may share the file (data-parallel ranks, jobs of a sweep): each waits for the
        # others' writes to finish, and the identity row is written by exactly one of them
        connection = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S)
        try:
            connection.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, kind TEXT, answer TEXT)")
            connection.execute("CREATE TABLE IF NOT EXISTS meta (identity TEXT)")
            connection.execute("SELECT key, kind, answer FROM answers LIMIT 1").fetchall()  # the schema we write
            connection.execute("INSERT INTO meta SELECT ? WHERE NOT EXISTS (SELECT 1 FROM meta)",
                               (json.dumps(self.identity, sort_keys=True),))
            connection.commit()
        except BaseException:
            connection.close()
            raise
        return connection

    def _set_aside(self, error: BaseException) -> bool:
        """Move an unusable cache file out of the way (kept for a look, named .unusable-N); False when there is
        nothing to move or it cannot be moved, and the cache is then off."""
        if not os.path.lexists(self.path) or isinstance(error, OSError) and not self.directory.is_dir():
            self._give_up("cannot be created", error)
            return False
        counter = 1
        while os.path.lexists(f"{self.path}.unusable-{counter}"):
            counter += 1
        try:
            os.replace(self.path, f"{self.path}.unusable-{counter}")
        except OSError as move_error:
            self._give_up(f"is unusable ({describe(error)}) and cannot be moved aside", move_error)
            return False
        self._warn(f"answer cache {self.path} was unusable ({describe(error)}): moved to "
                   f"{self.path.name}.unusable-{counter}; its answers are computed again")
        return True

    def _warn(self, message: str) -> None:
        self.notes.append(message)
        warnings.warn(message, stacklevel=4)

    def _give_up(self, what: str, error: BaseException) -> None:
        self.close()
        self._warn(f"answer cache {self.path} {what} ({describe(error)}): the run goes on without it")

    def get_many(self, requests: list[Request]) -> dict[Request, Result]:
        found: dict[Request, Result] = {}
        if self.connection is None:
            return found
        keys = {request_key(r): r for r in requests}
        items = list(keys.items())
        unreadable = 0
        try:
            for begin in range(0, len(items), 500):
                chunk = items[begin : begin + 500]
                marks = ",".join("?" * len(chunk))
                rows = self.connection.execute(
                    f"SELECT key, kind, answer FROM answers WHERE key IN ({marks})", [k for k, _ in chunk]
                ).fetchall()
                for key, kind, answer in rows:
                    result = read_answer(keys[key], kind, answer)
                    if result is None:
                        unreadable += 1
                    else:
                        found[keys[key]] = result
        except sqlite3.Error as error:
            self.faults += len(requests) - len(found)
            self._give_up("cannot be read", error)
            return found
        if unreadable:
            self.faults += unreadable
            self._warn(f"answer cache {self.path}: {unreadable} stored answer(s) do not read back as answers of "
                       "their requests; they are computed again")
        return found

    def put_many(self, answers: dict[Request, Result]) -> None:
        if self.connection is None:
            self.faults += len(answers)
            return
        try:
            self.connection.executemany(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?)",
                [(request_key(r), r.kind, json.dumps(a.to_json())) for r, a in answers.items()],
            )
            self.connection.commit()
        except sqlite3.Error as error:
            self.faults += len(answers)
            self._give_up("cannot be written", error)

    def close(self) -> None:
        """Close the file; the cache is off from then on."""
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except sqlite3.Error:
                pass


def describe(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_answer(request: Request, kind: Any, answer: Any) -> Result | None:
    """A stored answer as its result type, or None when it is not an answer of this request's kind: a row
    of another kind, text that is not JSON, or JSON whose fields are missing or of other types."""
    if kind != request.kind or kind not in RESULT_TYPES or not isinstance(answer, str):
        return None
    try:
        data = json.loads(answer)
        result = RESULT_TYPES[kind].from_json(data)
        written = result.to_json()
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if not isinstance(data, dict) or not set(data) <= set(written):
        return None
    for name, value in written.items():
        if name in data and json.dumps(data[name]) != json.dumps(value):
            return None  # converted on the way in: it was stored as another type
        if isinstance(value, list) and not all(isinstance(v, int | float) for v in value):
            return None
        if name == "text" and not isinstance(value, str):
            return None
    lengths = {len(value) for value in written.values() if isinstance(value, list)}
    if len(lengths) > 1:  # per-token fields of different lengths
        return None
    options = getattr(request, "options", None)
    if kind == "choose" and options is not None and len(written["logprobs"]) != len(options):
        return None
    return result
