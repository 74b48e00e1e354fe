"""open-unlearning's evaluation logs (`TOFU_EVAL.json`, `MUSE_EVAL.json`), as its retain models publish them.

One JSON object keyed by metric name; a per-item metric is `{"agg_value": x, "value_by_index": {"0": {...},
...}}` and a membership-inference attack is `{"forget": {...}, "holdout": {...}, "auc": x, "agg_value": x}`
with the same per-item shape on each side. Conventions converted here:

- truth ratios are stored as wrong/correct (`forget_truth_ratio`, `retain_Truth_Ratio`, ...), the inverse of
  mu-eval's s; forget quality is unchanged by the inversion (the KS test is invariant under a monotone map);
- Min-K% scores are stored as -mean(lowest log-probs) (lower = member), mu-eval keeps the mean itself
  (higher = member); the AUC is the same in both conventions.
"""

from __future__ import annotations

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

FORMAT = "open-unlearning"
TOFU_FILE, MUSE_FILE = "TOFU_EVAL.json", "MUSE_EVAL.json"

#: open-unlearning metric -> (mu-eval item name, field of each indexed entry, how to convert it).
TOFU_ITEMS: dict[str, tuple[str, str, str]] = {
    "forget_truth_ratio": ("forget_truth_ratio_s", "score", "inverse"),
    "forget_Q_A_Prob": ("forget_prob", "prob", "same"),
    "forget_Q_A_ROUGE": ("forget_rougeL_recall", "rougeL_recall", "same"),
    "extraction_strength": ("forget_extraction_strength", "score", "same"),
    "exact_memorization": ("forget_exact_memorization", "score", "same"),
    "retain_Q_A_Prob": ("retain_prob", "prob", "same"),
    "retain_Truth_Ratio": ("retain_truth_ratio_s", "score", "inverse"),
    "retain_Q_A_ROUGE": ("retain_rougeL_recall", "rougeL_recall", "same"),
    "ra_Q_A_Prob_normalised": ("real_authors_prob", "prob", "same"),
    "ra_Truth_Ratio": ("real_authors_truth_ratio_s", "score", "inverse"),
    "ra_Q_A_ROUGE": ("real_authors_rougeL_recall", "rougeL_recall", "same"),
    "wf_Q_A_Prob_normalised": ("world_facts_prob", "prob", "same"),
    "wf_Truth_Ratio": ("world_facts_truth_ratio_s", "score", "inverse"),
    "wf_Q_A_ROUGE": ("world_facts_rougeL_recall", "rougeL_recall", "same"),
}
#: Membership-inference item names per benchmark: (forget side, holdout side).
MIA_ITEMS = {"tofu": ("forget_min_k", "holdout_min_k"), "muse": ("privleak_forget_mink40", "privleak_holdout_mink40")}


def is_log(data: Any) -> bool:
    """An object keyed by metric name whose values carry `agg_value` (and no report schema version)."""
    return (isinstance(data, dict) and "schema_version" not in data and bool(data)
            and all(isinstance(v, dict) for v in data.values())
            and any("agg_value" in v for v in data.values()))


def _convert(value: Any, how: str) -> float | None:
    number = float(value)
    if how == "inverse":
        return finite_or_none(1.0 / number) if number != 0 else None
    if how == "negate":
        return finite_or_none(-number)
    return finite_or_none(number)


def _indexed(data: dict, metric: str, field: str, how: str, where: str) -> list[float | None]:
    section = data[metric]
    if "value_by_index" not in section:
        raise ReferenceError(f"{where}: {metric} has no per-item values (value_by_index)")
    return by_index(section["value_by_index"], f"{where}: {metric}", lambda entry: _convert(entry[field], how))


def mia_items(data: dict, benchmark: str, where: str) -> dict[str, list[float | None]]:
    """Min-K% per item of the forget and holdout sides, in mu-eval's orientation (higher = member)."""
    attack = data.get("mia_min_k")
    if not isinstance(attack, dict) or "forget" not in attack or "holdout" not in attack:
        return {}
    forget_name, holdout_name = MIA_ITEMS[benchmark]
    return {
        forget_name: by_index(attack["forget"].get("value_by_index"), f"{where}: mia_min_k.forget",
                              lambda entry: _convert(entry["score"], "negate")),
        holdout_name: by_index(attack["holdout"].get("value_by_index"), f"{where}: mia_min_k.holdout",
                               lambda entry: _convert(entry["score"], "negate")),
    }


def read_tofu(path: Path, data: dict, task: str | None = None) -> dict[str, Any]:
    where = str(path)
    if "forget_truth_ratio" not in data:
        raise ReferenceError(f"{where}: no forget_truth_ratio, so no forget quality can be computed from it")
    items = {name: _indexed(data, metric, field, how, where)
             for metric, (name, field, how) in TOFU_ITEMS.items() if metric in data}
    items.update(mia_items(data, "tofu", where))
    n = len(items["forget_truth_ratio_s"])
    task = task or tofu_task_for(n, f"{where}: forget_truth_ratio")
    info = {"n": {"forget": n, **({"holdout": len(items["holdout_min_k"])} if "holdout_min_k" in items else {})},
            "scoring": "reference", "source_format": FORMAT}
    return published_report(path, FORMAT, path.parent.name, {task: {"items": items, "info": info}})


def muse_task_for(path: Path) -> str:
    """open-unlearning names its MUSE folders after the corpus (`muse_Llama-2-7b-hf_News_retrain`)."""
    folder = path.parent.name.lower()
    corpora = [corpus for corpus in ("news", "books") if corpus in folder]
    if len(corpora) != 1:
        raise ReferenceError(f"{path}: cannot tell MUSE-News from MUSE-Books by the folder name; name the task: "
                             "--reference muse_news=PATH or muse_books=PATH")
    return f"muse_{corpora[0]}"


def read_muse(path: Path, data: dict, task: str | None = None) -> dict[str, Any]:
    items = mia_items(data, "muse", str(path))
    if not items:
        raise ReferenceError(f"{path}: no mia_min_k with forget and holdout scores, so no PrivLeak reference")
    task = task or muse_task_for(path)
    info = {"n": {"forget": len(items["privleak_forget_mink40"]), "holdout": len(items["privleak_holdout_mink40"])},
            "source_format": FORMAT}
    return published_report(path, FORMAT, path.parent.name, {task: {"items": items, "info": info}})


def read(path: Path, data: dict, task: str | None = None) -> dict[str, Any]:
    """TOFU or MUSE by the file's name, else by its metrics (TOFU's have a forget truth ratio)."""
    if path.name == MUSE_FILE or (path.name != TOFU_FILE and "forget_truth_ratio" not in data):
        return read_muse(path, data, task)
    return read_tofu(path, data, task)


def log_in(folder: Path) -> Path | None:
    for name in (TOFU_FILE, MUSE_FILE):
        if (folder / name).is_file():
            return folder / name
    return None


def load(path: Path, task: str | None = None) -> dict[str, Any]:
    return read(path, read_json(path), task)
