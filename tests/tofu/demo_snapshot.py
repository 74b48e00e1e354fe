"""What of a demo report must stay the same when code is reorganised: everything but timings, dates, versions,
machine paths and hashes of floats. `python tests/tofu/demo_snapshot.py DEMO_OUTPUT` rewrites the stored
snapshot from a run of the scaled-down demo (`SMALL` in test_forget_quality_separation.py); do that only for
a deliberate change of numbers or of the report's keys, and say so in the commit."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).parent / "data" / "demo_small_reports.json"
ROLES = ("reference", "target", "reference_seed2")
VOLATILE = ("created", "timings", "versions", "mu_eval_version")


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what legitimately differs between two runs of the same code on other days."""
    kept = {key: value for key, value in report.items() if key not in VOLATILE}
    kept["config"] = {key: value for key, value in report["config"].items() if key not in ("data_dir", "cache")}
    # hashes of trained weights and of per-item floats need bit-exact training; the numbers themselves are
    # compared within float32 noise
    kept["model"] = {key: value for key, value in report["model"].items() if key != "weights_sha256"}
    kept["tasks"] = {name: {key: value for key, value in section.items() if key != "items_sha256"}
                     for name, section in report["tasks"].items()}
    return kept


def snapshot_of(output: Path) -> dict[str, Any]:
    return {role: comparable(json.loads((output / role / "report.json").read_text())) for role in ROLES}


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps(snapshot_of(Path(sys.argv[1])), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}")
