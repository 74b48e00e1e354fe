"""Checks on the folders a run writes (report, answer cache, saved model), made before the model loads: a run
that cannot keep its result should stop in its first second, not after an hour of evaluation."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


class PathError(Exception):
    """A path the run must write to cannot be written: the message names the path, its role and why."""


def _stat(path: Path, role: str) -> os.stat_result | None:
    """The path's status, None when nothing is there; a malformed or too long path is an error naming `role`."""
    try:
        return path.stat()
    except ValueError:  # an embedded null byte
        raise PathError(f"{role} path contains a null byte: {str(path)!r}") from None
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        if error.errno == errno.ENAMETOOLONG:
            raise PathError(f"{role} path is too long for the file system ({len(str(path))} characters): "
                            f"{str(path)[:80]}...") from None
        raise PathError(f"{role} path cannot be used: {path}: {error.strerror}") from None


def check_writable_folder(folder: str | os.PathLike, role: str) -> None:
    """Raise `PathError` unless files can be created in `folder`, or in the folder that would hold it (the
    nearest existing one above it: the run creates what is missing). Nothing is left behind: a probe file
    is created and removed in the nearest existing folder."""
    path = Path(folder).expanduser().absolute()
    status = _stat(path, role)
    if status is not None and not os.path.isdir(path):
        raise PathError(f"{role} path is a file, not a folder: {path}")
    existing = path
    while _stat(existing, role) is None:
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise PathError(f"{role} folder {path} cannot be created: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".mu-eval-write-check-"):
            pass
    except OSError as error:
        where = "" if existing == path else f" (in {existing}, the nearest folder that exists)"
        reason = error.strerror or type(error).__name__
        raise PathError(f"{role} folder {path} is not writable{where}: {reason}") from None


def check_writable_file(file: str | os.PathLike, role: str) -> None:
    """Raise `PathError` unless `file` can be written: its folder is writable and it is not a folder."""
    path = Path(file).expanduser().absolute()
    if _stat(path, role) is not None and os.path.isdir(path):
        raise PathError(f"{role} path is a folder, not a file: {path}")
    check_writable_folder(path.parent, role)
