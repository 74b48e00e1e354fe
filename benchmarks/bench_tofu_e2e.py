"""End to end: wall time of the full TOFU forget10 evaluation, mu-eval against the reference way.

Paths, side by side in one run on the same model and data:
- task: `mu_eval.evaluate((model, tokenizer), ["tofu_forget10"], data_dir=...)` when the task is registered
  (skipped, with the reason recorded, when it is not);
- mirror: the same requests (docs/tofu.md) through one Engine sweep, metrics by benchmarks/tofu.py;
- baseline: open-unlearning's 13 scoring sweeps with its per-item preparation and plain batched
  `model.generate` (benchmarks/tofu_baseline.py), at every `--baseline-batch-size` (32 and 256).
Every path runs `--repeats` times (3), interleaved; medians are compared, against the fastest baseline.
The metric values of each fast path are compared with the baseline's by name.

    python -m benchmarks.bench_tofu_e2e               # full size on a GPU
    python -m benchmarks.bench_tofu_e2e --toy         # CI smoke size (default without CUDA)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks.common import (
    Setup,
    build_setup,
    compare_metrics,
    fastest_baseline,
    interleaved,
    make_backend,
    print_table,
    ratio,
    result_header,
    script_main,
)
from benchmarks.tofu import (
    TASK_NAME,
    TofuPlan,
    item_differences,
    judge_items,
    registered_task,
    run_fast,
    tofu_metrics,
)
from benchmarks.tofu_baseline import Baseline

TARGETS = {"ratios.speedup_task": ">= 4 (full TOFU forget10 eval on an H100)", "agreement.agree": "true"}
WARMUP_ITEMS = 2


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: 200, or 24 with --toy")


def head(plan: TofuPlan, items: int) -> TofuPlan:
    """The first `items` questions of every set: a warm-up of the same code path."""
    from dataclasses import replace

    sets = [replace(s, prompts=s.prompts[:items], answers=s.answers[:items], bases=s.bases[:items],
                    perturbed=s.perturbed[:items]) for s in plan.sets]
    return TofuPlan(sets, plan.holdout_prompts[:items], plan.holdout_answers[:items], plan.max_new_tokens)


def run_task(setup: Setup, max_new: int, limit: int | None = None) -> dict[str, float | None]:
    """The registered task through the public API (no answer cache); its metric values by name."""
    import mu_eval

    report = mu_eval.evaluate((setup.model, setup.tokenizer), [TASK_NAME], data_dir=setup.data_dir,
                              task_options={TASK_NAME: {"max_new_tokens": max_new}}, use_cache=False,
                              progress=False, limit=limit)
    return {name: m["value"] for name, m in report.tasks[TASK_NAME]["metrics"].items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.tofu import load_plan

    setup = build_setup(args)
    max_new = args.max_new_tokens or (24 if setup.toy else 200)
    plan = load_plan(setup.data_dir, make_backend(setup).chat_formatter(), max_new)
    task, task_reason = registered_task()

    # warm-up: every path on the first questions of each set
    warm = head(plan, WARMUP_ITEMS)
    run_fast(make_backend(setup), warm)
    for size in args.baseline_batch_size:
        Baseline(setup.model, setup.tokenizer, setup.device, size).run(warm)
    if task is not None:
        run_task(setup, max_new, limit=WARMUP_ITEMS)

    def baseline_path(size: int) -> Any:
        def run_once() -> tuple[dict, dict, Baseline]:
            baseline = Baseline(setup.model, setup.tokenizer, setup.device, size)
            values, holdout = baseline.run(plan)
            return tofu_metrics(plan, values, holdout), values, baseline
        return run_once

    paths: dict[str, Any] = {"mirror": lambda: run_fast(make_backend(setup), plan)}
    if task is not None:
        paths["task"] = lambda: run_task(setup, max_new)
    paths.update({f"baseline_{size}": baseline_path(size) for size in args.baseline_batch_size})
    values, timing = interleaved(paths, args.repeats, setup.device)
    task_metrics = values.get("task")
    task_seconds = timing["task"]["median"] if task is not None else None
    mirror, mirror_seconds = values["mirror"], timing["mirror"]["median"]
    best, (base_metrics, base_values, baseline), best_timing = fastest_baseline(args.baseline_batch_size, values,
                                                                                timing)
    baseline_seconds = best_timing["median"]

    mirror_agreement = compare_metrics(mirror["metrics"], base_metrics, setup.dtype)
    mirror_agreement.update(item_differences(mirror["values"], base_values))
    mirror_agreement["agree"] = mirror_agreement["agree"] and judge_items(mirror_agreement)
    task_agreement = None
    if task_metrics is not None:
        shared = sorted(set(task_metrics) & set(base_metrics))
        task_agreement = compare_metrics({k: task_metrics[k] for k in shared},
                                         {k: base_metrics[k] for k in shared}, setup.dtype)
        task_agreement["task_only_metrics"] = {k: task_metrics[k] for k in sorted(set(task_metrics) - set(shared))}
        task_agreement["agree"] = task_agreement["agree"] and len(shared) == len(base_metrics)

    c = baseline.counters
    result = result_header("tofu_e2e", setup, TARGETS)
    result.update({
        "task": {"available": task is not None, "reason": task_reason, "seconds": task_seconds,
                 "runs": timing["task"]["runs"] if task is not None else None},
        "max_new_tokens": max_new,
        "fast": {"seconds": task_seconds if task_seconds is not None else mirror_seconds,
                 "path": "task" if task_seconds is not None else "mirror"},
        "mirror": {"seconds": mirror_seconds, "runs": timing["mirror"]["runs"], "engine": mirror["engine"]},
        "baseline": {"seconds": baseline_seconds, "runs": best_timing["runs"], "counters": c.to_json(),
                     "batch_size": best,
                     "by_batch_size": {str(size): timing[f"baseline_{size}"] for size in args.baseline_batch_size}},
        "ratios": {"speedup_task": ratio(baseline_seconds, task_seconds),
                   "speedup_mirror": ratio(baseline_seconds, mirror_seconds),
                   "speedup_task_by_baseline_batch_size": {
                       str(size): ratio(timing[f"baseline_{size}"]["median"], task_seconds)
                       for size in args.baseline_batch_size}},
        "metrics": {"baseline": base_metrics, "mirror": mirror["metrics"], "task": task_metrics},
        "agreement": {"agree": mirror_agreement["agree"] and (task_agreement is None or task_agreement["agree"]),
                      "mirror_vs_baseline": mirror_agreement, "task_vs_baseline": task_agreement},
    })
    print_table(f"TOFU forget10 end to end ({'toy, CPU figures are no GPU evidence' if setup.toy else 'full size'})", {
        "device": result["environment"]["device_name"],
        "task path": "mu_eval.evaluate" if task is not None else f"unavailable: {task_reason}",
        "task seconds": task_seconds, "mirror seconds": mirror_seconds, "baseline seconds": baseline_seconds,
        "speed-up, task": result["ratios"]["speedup_task"], "speed-up, mirror": result["ratios"]["speedup_mirror"],
        "max per-item NLL difference": mirror_agreement["max_item_nll_diff"],
        "identical generations": mirror_agreement["identical_generations"],
        "metric values agree": result["agreement"]["agree"],
    })
    return result


def main(argv: list[str] | None = None) -> int:
    return script_main("tofu_e2e", __doc__.splitlines()[0], run, argv, add_options)


if __name__ == "__main__":
    sys.exit(main())
