"""RWKU's sets on the hub (`jinzhuoran/RWKU`) and the choice of unlearning targets.

The targets are the rows of `forget_target` in order (the first 100 are the paper's), or the key order of
a JSON file such as the repository's `all_intro.json` (`targets_file`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mu_eval.data import DataError, DatasetSpec

HF_ID = "jinzhuoran/RWKU"
PROBE_FIELDS = ("subject", "query", "answer")

SPECS: dict[str, DatasetSpec] = {
    "forget_level1": DatasetSpec(HF_ID, "forget_level1", "test", required_fields=PROBE_FIELDS),
    "forget_level2": DatasetSpec(HF_ID, "forget_level2", "test", required_fields=PROBE_FIELDS),
    "forget_level3": DatasetSpec(HF_ID, "forget_level3", "test", required_fields=(*PROBE_FIELDS, "type")),
    "neighbor_level1": DatasetSpec(HF_ID, "neighbor_level1", "test", required_fields=PROBE_FIELDS),
    "neighbor_level2": DatasetSpec(HF_ID, "neighbor_level2", "test", required_fields=PROBE_FIELDS),
    "mia_forget": DatasetSpec(HF_ID, "mia_forget", "test", required_fields=("subject", "text")),
    "mia_retain": DatasetSpec(HF_ID, "mia_retain", "test", required_fields=("subject", "text")),
    "utility_general": DatasetSpec(
        HF_ID, "utility_general", "test",
        required_fields=("subject", "task", "question", "choices", "answer", "examples"),
    ),
    "utility_reason": DatasetSpec(
        HF_ID, "utility_reason", "test", required_fields=("subject", "cot", "question", "answer")
    ),
    "utility_truthfulness": DatasetSpec(
        HF_ID, "utility_truthfulness", "test", required_fields=("subject", "question", "mc1_targets")
    ),
    "utility_factuality": DatasetSpec(
        HF_ID, "utility_factuality", "test", required_fields=("subject", "question", "answers")
    ),
    "utility_fluency": DatasetSpec(HF_ID, "utility_fluency", "test", required_fields=("subject", "instruction")),
    "forget_target": DatasetSpec(HF_ID, "forget_target", "train", required_fields=("target",)),
}

DEFAULT_NUM_TARGETS = 100


def targets_from_file(path: str | Path) -> list[str]:
    """Target order from a JSON list of names, or the key order of a JSON object (`all_intro.json`)."""
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read the RWKU targets file {path}: {error}") from error
    if isinstance(content, dict):
        return [str(k) for k in content]
    if isinstance(content, list) and all(isinstance(k, str) for k in content):
        return list(content)
    raise DataError(f"{path}: expected a JSON list of target names or an object keyed by target name")


def select_targets(order: Sequence[str], selection: Any, num_targets: int) -> list[str]:
    """The targets to evaluate.

    `selection` (None for the first `num_targets`) is a list, or items joined by "|": a 1-based index
    ("24"), an inclusive range ("1-10", as in RWKU's batch scripts) or a name ("Stephen King").
    """
    if selection is None or selection == "":
        if num_targets < 1:
            raise ValueError(f"num_targets must be positive, got {num_targets}")
        return list(order[:num_targets])
    chosen: list[str] = []
    for item in _items(selection):
        for name in _resolve(order, item):
            if name not in chosen:
                chosen.append(name)
    if not chosen:
        raise ValueError(f"no RWKU target selected by {selection!r}")
    return chosen


def _items(selection: Any) -> list[str]:
    items = selection if isinstance(selection, list | tuple) else str(selection).split("|")
    return [str(i).strip() for i in items if str(i).strip()]


def _is_position(item: str) -> bool:
    bounds = item.split("-")
    return len(bounds) in (1, 2) and all(b.isdigit() for b in bounds)


def names_only(selection: Any) -> list[str] | None:
    """The selected names when `selection` holds names only (no index or range), else None."""
    if selection is None or selection == "":
        return None
    items = _items(selection)
    return None if not items or any(_is_position(i) for i in items) else list(dict.fromkeys(items))


def _resolve(order: Sequence[str], item: str) -> list[str]:
    if item in order:
        return [item]
    if _is_position(item):
        bounds = item.split("-")
        first, last = int(bounds[0]), int(bounds[-1])
        if not 1 <= first <= last <= len(order):
            raise ValueError(f"RWKU target range {item!r} is outside 1-{len(order)}")
        return list(order[first - 1 : last])
    raise ValueError(f"unknown RWKU target {item!r} (not among the {len(order)} targets, nor an index or range)")


def by_subject(rows: Sequence[dict]) -> dict[str, list[dict]]:
    """Rows grouped by their `subject` (the target), each group in file order."""
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(str(row["subject"]), []).append(row)
    return grouped
