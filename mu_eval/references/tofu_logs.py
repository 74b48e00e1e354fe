"""TOFU's published evaluation logs (the `eval_results/ds_sizeN/` folders of the TOFU repository).

One JSON object per evaluation set, `{field: {item index: value}}`: `eval_log_forget.json` (forget),
`eval_log.json` (retain), `eval_real_author_wo_options.json` and `eval_real_world_wo_options.json`. Per
item they hold the mean NLL of the answer (`avg_gt_loss`), of the truth-ratio base (`avg_paraphrased_loss`)
and of each perturbed answer (`average_perturb_loss`), and ROUGE-L recall; no per-token values, so a
reference read from them serves forget quality but not privleak (Min-K% needs the tokens).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mu_eval.references.published import (
    ReferenceError,
    by_index,
    finite_or_none,
    published_report,
    read_json,
    tofu_task_for,
)

FORMAT = "tofu-eval-logs"
FILES: dict[str, str] = {
    "forget": "eval_log_forget.json",
    "retain": "eval_log.json",
    "real_authors": "eval_real_author_wo_options.json",
    "world_facts": "eval_real_world_wo_options.json",
}
#: Sets whose Prob is normalised against the perturbed answers.
NORMALISED = ("real_authors", "world_facts")
REQUIRED = ("avg_gt_loss", "avg_paraphrased_loss", "average_perturb_loss")


def is_log(data: Any) -> bool:
    return isinstance(data, dict) and all(key in data for key in REQUIRED)


def is_folder(path: Path) -> bool:
    return path.is_dir() and (path / FILES["forget"]).is_file()


def set_items(data: dict[str, Any], role: str, where: str) -> dict[str, list[float | None]]:
    """Per-item Prob, truth-ratio statistic s (not the log's `truth_ratio`, which is 1/s) and ROUGE-L recall.

    s = exp(mean_j NLL(perturbed_j) - NLL(base)); Prob = exp(-NLL(answer)), normalised against the perturbed
    answers for real authors and world facts.
    """
    if not is_log(data):
        raise ReferenceError(f"{where}: not a TOFU evaluation log (needs {', '.join(REQUIRED)})")
    answer = by_index(data["avg_gt_loss"], f"{where}: avg_gt_loss", float)
    base = by_index(data["avg_paraphrased_loss"], f"{where}: avg_paraphrased_loss", float)
    perturbed = by_index(data["average_perturb_loss"], f"{where}: average_perturb_loss",
                         lambda row: [float(v) for v in row])
    if not len(answer) == len(base) == len(perturbed):
        raise ReferenceError(f"{where}: the fields hold different numbers of items")
    s = [math.exp(sum(row) / len(row) - b) for b, row in zip(base, perturbed)]
    if role in NORMALISED:
        prob = [math.exp(-a) / (math.exp(-a) + sum(math.exp(-p) for p in row)) for a, row in zip(answer, perturbed)]
    else:
        prob = [math.exp(-a) for a in answer]
    items: dict[str, list[float | None]] = {
        f"{role}_prob": [finite_or_none(v) for v in prob],
        f"{role}_truth_ratio_s": [finite_or_none(v) for v in s],
    }
    if "rougeL_recall" in data:
        items[f"{role}_rougeL_recall"] = by_index(data["rougeL_recall"], f"{where}: rougeL_recall", float)
    return items


def read_folder(folder: Path, task: str | None = None) -> dict[str, Any]:
    """A report holding the folder's per-item values under `task` (by default from the forget set's size)."""
    items: dict[str, list[float | None]] = {}
    counts: dict[str, int] = {}
    for role, name in FILES.items():
        path = folder / name
        if not path.is_file():
            if role == "forget":
                raise ReferenceError(f"{folder}: no {name}, so no forget quality can be computed from it")
            continue
        section = set_items(read_json(path), role, str(path))
        items.update(section)
        counts[role] = len(section[f"{role}_prob"])
    task = task or tofu_task_for(counts["forget"], str(folder / FILES["forget"]))
    info = {"n": counts, "scoring": "reference", "source_format": FORMAT}
    return published_report(folder, FORMAT, folder.name, {task: {"items": items, "info": info}})


def read_file(path: Path, data: dict[str, Any], task: str | None = None) -> dict[str, Any]:
    """One log file on its own: the forget set's (its name says which set; only the forget set serves FQ)."""
    role = next((role for role, name in FILES.items() if path.name == name), "forget")
    if role != "forget":
        raise ReferenceError(f"{path}: a TOFU {role} log alone gives no forget quality; pass its folder, which "
                             f"holds {FILES['forget']}")
    section = set_items(data, "forget", str(path))
    task = task or tofu_task_for(len(section["forget_prob"]), str(path))
    info = {"n": {"forget": len(section["forget_prob"])}, "scoring": "reference", "source_format": FORMAT}
    return published_report(path, FORMAT, path.parent.name, {task: {"items": section, "info": info}})
