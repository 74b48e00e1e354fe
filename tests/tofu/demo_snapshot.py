"""What of a demo report must stay the same when code is reorganised: everything but timings, dates, versions,
machine paths and hashes of floats.

The demo trains its models for 20 epochs, and the kernels torch and its BLAS pick differ by processor (AVX2 or
AVX-512, Intel or AMD): their last bits differ, training amplifies that, and the same code ends with other
numbers on another kind of processor. So a snapshot is stored per processor (`processor()`), and the test
compares against the one recorded on a processor like the one it runs on.

`python tests/tofu/demo_snapshot.py DEMO_OUTPUT` writes this processor's snapshot from a run of the scaled-down
demo (`SMALL` in test_forget_quality_separation.py). Do that for a deliberate change of numbers or of the
report's keys (for every processor recorded, and say so in the commit), or to add a processor: then from a
commit whose numbers another processor's snapshot already vouches for.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from pathlib import Path
from typing import Any

SNAPSHOTS = Path(__file__).parent / "data" / "demo_snapshots"
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


def processor() -> str:
    """What decides the trained numbers besides the code: torch's version, the vector instructions its kernels
    use here, and the processor's vendor and model (its BLAS dispatches on them)."""
    import torch

    fields = {}
    cpuinfo = Path("/proc/cpuinfo")
    for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else []):
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine()
    return f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, {fields.get('vendor_id', '')} {name}"


def snapshot_path(fingerprint: str) -> Path:
    return SNAPSHOTS / (re.sub(r"[^A-Za-z0-9.]+", "-", fingerprint).strip("-") + ".json")


def stored_snapshot() -> dict[str, Any] | None:
    """The snapshot recorded on a processor like this one, or None."""
    path = snapshot_path(processor())
    return json.loads(path.read_text())["reports"] if path.exists() else None


if __name__ == "__main__":
    fingerprint = processor()
    target = snapshot_path(fingerprint)
    target.parent.mkdir(parents=True, exist_ok=True)
    record = {"processor": fingerprint, "reports": snapshot_of(Path(sys.argv[1]))}
    target.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target}")
