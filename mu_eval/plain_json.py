"""Rows of a JSON or JSON Lines file read with the standard library, where `datasets` refuses the file.

`datasets` before 4.8 cannot read a column whose rows mix types (a string in one row, a number in the next) and
raises an error that names neither the row nor the field. Read plainly, such a file reaches the row checks that
follow, which do name them. Later releases read the file themselves and never come here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SUFFIXES = (".json", ".jsonl")


def plain_json_rows(path: Path) -> list[dict[str, Any]] | None:
    """The file's objects as rows (a JSON array of objects, or one object per line), or None if it is not that."""
    if path.suffix not in SUFFIXES:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    try:
        data = json.loads(text)
        rows = [data] if isinstance(data, dict) else data
    except json.JSONDecodeError:
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            return None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        return None
    return rows
