"""Turn the four scripts' JSON files into the results table of docs/performance.md, and judge the targets.

A GPU run is short and its figures go into the docs by hand; reading them off four JSON files is where a
wrong digit or a toy-size file slips in. This prints the table rows, the machine and library versions, and
each target with the measured value and whether it is met, from the files alone:

    python -m benchmarks.results_table                      # benchmarks/results/*.json
    python -m benchmarks.results_table --results-dir DIR

Exit status 1 when a file is missing, a file is a toy-size run, a `--limit` run or one with fewer than 3
timed runs per path, or the files come from different devices.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR

#: JSON file stem -> the row's label in docs/performance.md
FILES = {
    "bench_scoring": "scoring tokens/s, MFU",
    "bench_generation": "generation new tokens/s",
    "bench_tofu_e2e": "full TOFU forget10 eval, seconds",
    "bench_multiple_choice": "WMDP-shaped multiple choice, seconds",
}
#: the ratio each row quotes (baseline / fast)
RATIO_KEYS = {
    "bench_scoring": "speedup_wall",
    "bench_generation": "speedup_wall",
    "bench_tofu_e2e": "speedup_task",
    "bench_multiple_choice": "speedup_vs_baseline",
}


def lookup(data: dict[str, Any], dotted: str) -> Any:
    """`data["a"]["b"]` for "a.b"; None where a key is missing."""
    value: Any = data
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def target_met(value: Any, target: str) -> bool | None:
    """Whether `value` meets a target written as ">= N ..." or "true"; None when it cannot be judged."""
    if target.strip() == "true":
        return value is True
    bound = re.match(r"\s*>=\s*([0-9.]+)", target)
    if bound is None or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return value >= float(bound.group(1))


def _number(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def cells(name: str, data: dict[str, Any]) -> tuple[str, str]:
    """The mu-eval and baseline cells of one row."""
    fast, baseline = data["fast"], data["baseline"]
    if name == "bench_scoring":
        return (f"{_number(fast['tokens_per_second'], ',.0f')} tok/s, MFU {_number(fast['mfu'], '.1%')}",
                f"{_number(baseline['distinct_tokens_per_second'], ',.0f')} distinct tok/s, "
                f"MFU {_number(baseline['mfu'], '.1%')}")
    if name == "bench_generation":
        return (f"{_number(fast['new_tokens_per_second'], ',.0f')} new tok/s",
                f"{_number(baseline['new_tokens_per_second'], ',.0f')} new tok/s")
    return f"{_number(fast['seconds'], '.1f')} s", f"{_number(baseline['seconds'], '.1f')} s"


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| figure | mu-eval | baseline | ratio | agree |", "|---|---|---|---|---|"]
    for name, label in FILES.items():
        data = results[name]
        mine, theirs = cells(name, data)
        speedup = data["ratios"].get(RATIO_KEYS[name])
        agree = "yes" if data["agreement"]["agree"] else "NO"
        lines.append(f"| {label} | {mine} | {theirs} | {_number(speedup, '.2f')}x | {agree} |")
    return lines


def targets(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for name, data in results.items():
        for key, target in (data.get("targets") or {}).items():
            value = lookup(data, key)
            met = target_met(value, target)
            verdict = {True: "met", False: "NOT met", None: "not judged"}[met]
            shown = f"{value:.4g}" if isinstance(value, float) else value
            lines.append(f"- {name} {key} = {shown} (target {target}): {verdict}")
    return lines


#: Timed runs per path a figure for the docs needs (the median of them is reported).
MIN_REPEATS = 3


def problems(results: dict[str, dict[str, Any]]) -> list[str]:
    """Reasons the files cannot fill the docs' GPU table."""
    found = [f"{name}: toy-size run (--toy), not a GPU figure" for name, data in results.items() if data.get("toy")]
    found += [f"{name}: a --limit {data['limit']} run (first rows only), not a figure"
              for name, data in results.items() if data.get("limit")]
    found += [f"{name}: {data.get('repeats', 1)} timed run(s) per path, fewer than {MIN_REPEATS}"
              for name, data in results.items() if (data.get("repeats") or 1) < MIN_REPEATS]
    devices = {data["environment"].get("device_name") for data in results.values()}
    if len(devices) > 1:
        found.append(f"the files come from different devices: {sorted(map(str, devices))}")
    return found


def environment_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(results.values()))["environment"]
    keys = ("device_name", "peak_bf16_flops", "dtype", "torch", "transformers", "tokenizers", "mu_eval")
    return [f"- {key}: {first.get(key)}" for key in keys]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="folder of the scripts' JSON files")
    args = parser.parse_args(argv)
    missing = [name for name in FILES if not (args.results_dir / f"{name}.json").is_file()]
    if missing:
        print(f"missing in {args.results_dir}: {', '.join(f'{name}.json' for name in missing)}", file=sys.stderr)
        return 1
    results = {name: json.loads((args.results_dir / f"{name}.json").read_text(encoding="utf-8")) for name in FILES}
    print("\n".join([*table(results), "", "Machine and versions:", *environment_lines(results), "",
                     "Targets:", *targets(results)]))
    found = problems(results)
    for problem in found:
        print(f"warning: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
