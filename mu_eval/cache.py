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
    """Answers of one model, stored by request key."""

    def __init__(self, directory: str | os.PathLike, identity: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.identity = identity
        self.path = self.directory / f"{identity_key(identity)}.sqlite"
        # several processes may share the file (data-parallel ranks, jobs of a sweep): each waits for the
        # others' writes to finish, and the identity row is written by exactly one of them
        self.connection = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S)
        self.connection.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, kind TEXT, answer TEXT)")
        self.connection.execute("CREATE TABLE IF NOT EXISTS meta (identity TEXT)")
        self.connection.execute("INSERT INTO meta SELECT ? WHERE NOT EXISTS (SELECT 1 FROM meta)",
                                (json.dumps(identity, sort_keys=True),))
        self.connection.commit()

    def get_many(self, requests: list[Request]) -> dict[Request, Result]:
        found: dict[Request, Result] = {}
        keys = {request_key(r): r for r in requests}
        items = list(keys.items())
        for begin in range(0, len(items), 500):
            chunk = items[begin : begin + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.connection.execute(
                f"SELECT key, kind, answer FROM answers WHERE key IN ({marks})", [k for k, _ in chunk]
            ).fetchall()
            for key, kind, answer in rows:
                found[keys[key]] = RESULT_TYPES[kind].from_json(json.loads(answer))
        return found

    def put_many(self, answers: dict[Request, Result]) -> None:
        self.connection.executemany(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?)",
            [(request_key(r), r.kind, json.dumps(a.to_json())) for r, a in answers.items()],
        )
        self.connection.commit()

    def close(self) -> None:
        self.connection.close()
