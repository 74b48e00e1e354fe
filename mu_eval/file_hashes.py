"""SHA-256 of weight files, remembered on disk so a 7B checkpoint is read once, not on every run.

Hashing 15 GB of safetensors takes about a minute; the hash of a file whose path, size, modification time
and inode are unchanged is taken from a small SQLite table in the cache folder instead. Rewriting a file
changes its modification time (or inode), which makes the old entry unreachable. When the cache folder
cannot be written, hashes are remembered for the life of the process only.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from mu_eval.cache_location import default_cache_dir

MEMO_FILE_NAME = "file-hashes.sqlite"
_IN_PROCESS: dict[tuple[str, int, int, int], str] = {}


def _file_key(path: Path) -> tuple[str, int, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read a block at a time (weights files are gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _open_memo() -> sqlite3.Connection | None:
    try:
        directory = default_cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(directory / MEMO_FILE_NAME, timeout=30)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS hashes (path TEXT, size INTEGER, mtime_ns INTEGER, inode INTEGER,"
            " sha256 TEXT, PRIMARY KEY (path, size, mtime_ns, inode))"
        )
        return connection
    except (OSError, sqlite3.Error):
        return None


def hash_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, memoised on (path, size, mtime, inode) in the process and on disk."""
    key = _file_key(Path(path))
    if key in _IN_PROCESS:
        return _IN_PROCESS[key]
    connection = _open_memo()
    try:
        if connection is not None:
            row = connection.execute(
                "SELECT sha256 FROM hashes WHERE path=? AND size=? AND mtime_ns=? AND inode=?", key
            ).fetchone()
            if row is not None:
                _IN_PROCESS[key] = row[0]
                return row[0]
        sha256 = file_sha256(Path(path))
        _IN_PROCESS[key] = sha256
        if connection is not None:
            try:
                with connection:
                    connection.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)", (*key, sha256))
            except sqlite3.Error:
                pass  # a read-only or locked memo only costs a re-hash next time
        return sha256
    finally:
        if connection is not None:
            connection.close()


def forget_in_process_hashes() -> None:
    """Drop the in-process memo (the on-disk one stays), as a new process would start."""
    _IN_PROCESS.clear()
