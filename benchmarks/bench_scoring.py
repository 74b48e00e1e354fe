"""Scoring throughput: tokens/s and model FLOP utilisation of the Score pass of TOFU forget10.

Fast path: every distinct Score request of the evaluation (the registered `tofu_forget10` task's own
requests when it is installed, else the TOFU mirror in benchmarks/tofu.py) answered by
mu_eval's Engine and HFBackend. Baseline, side by side in the same run: the reference-style sweeps
(open-unlearning's 13 sweeps with its per-item preparation, batches of a fixed number of rows in dataset
order, float32 log-softmax over the whole vocabulary), at every `--baseline-batch-size` (32 and 256). Every
path runs `--repeats` times (3), interleaved; the medians are compared, against the fastest baseline.

MFU = tokens/s x 2 x parameters / the device's dense bf16 peak (null for a device not in the table).
Tokens are the real (unpadded) tokens of the distinct texts; attention FLOPs are not counted.

    python -m benchmarks.bench_scoring            # full size on a GPU
    python -m benchmarks.bench_scoring --toy      # CI smoke size (default without CUDA)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks.common import (
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
from benchmarks.tofu import fast_values, item_differences, judge_items, load_plan, task_requests, tofu_metrics
from benchmarks.tofu_baseline import Baseline

TARGETS = {"fast.mfu": ">= 0.40 on an H100 (bf16, Llama-3.2-1B shape)", "agreement.agree": "true"}
WARMUP_REQUESTS = 64


def run(args: argparse.Namespace) -> dict[str, Any]:
    from mu_eval.backends.hf_encoding import encode_score
    from mu_eval.engine import Engine
    from mu_eval.requests import Score

    setup = build_setup(args)
    backend = make_backend(setup)
    plan = load_plan(setup.data_dir, backend.chat_formatter(), max_new_tokens=1)
    from_task, source = task_requests(backend, setup.data_dir)
    pool = from_task if from_task is not None else plan.score_requests()
    scores = list(dict.fromkeys(r for r in pool if isinstance(r, Score)))
    tokens = sum(len(encode_score(setup.tokenizer, r.context, r.continuation, r.append_eos, None).input_ids)
                 for r in scores)

    # warm-up of every path (CUDA context, kernels, allocator), then the timed runs, interleaved
    head = scores[:WARMUP_REQUESTS]
    Engine(make_backend(setup), progress=False).run(head)
    for size in args.baseline_batch_size:
        Baseline(setup.model, setup.tokenizer, setup.device, size).score(
            "warm-up", [r.context for r in head], [r.continuation for r in head])

    def fast_path() -> tuple[Any, Any]:
        engine = Engine(make_backend(setup), progress=False)
        return engine.answer(scores), engine

    def baseline_path(size: int) -> Any:
        def run_once() -> tuple[Any, Baseline]:
            baseline = Baseline(setup.model, setup.tokenizer, setup.device, size)
            return baseline.scoring_values(plan), baseline
        return run_once

    paths = {"fast": fast_path, **{f"baseline_{size}": baseline_path(size) for size in args.baseline_batch_size}}
    values, timing = interleaved(paths, args.repeats, setup.device)
    answers, engine = values["fast"]
    fast_seconds = timing["fast"]["median"]
    best, ((base_values, base_holdout), baseline), best_timing = fastest_baseline(args.baseline_batch_size, values,
                                                                                  timing)
    baseline_seconds = best_timing["median"]

    missing = [r for r in plan.score_requests() if r not in answers]
    if missing:  # the task asks other texts than the mirror: score the mirror's too, untimed, to compare
        answers.update(Engine(make_backend(setup), progress=False).answer(missing))
    fast_vals, fast_holdout = fast_values(plan, answers)
    agreement = compare_metrics(tofu_metrics(plan, fast_vals, fast_holdout, generations=False),
                                tofu_metrics(plan, base_values, base_holdout, generations=False), setup.dtype)
    items = item_differences(fast_vals, base_values)
    items.pop("identical_generations")
    agreement.update(items)
    agreement["agree"] = agreement["agree"] and judge_items(agreement)

    result = result_header("scoring", setup, TARGETS)
    flops, peak = 2 * setup.parameters, result["environment"]["peak_bf16_flops"]
    fast_rate, c = tokens / fast_seconds, baseline.counters
    result.update({
        "requests_source": source,
        "fast": {
            "seconds": fast_seconds, "runs": timing["fast"]["runs"], "distinct_requests": len(scores),
            "tokens": tokens,
            "tokens_per_second": fast_rate, "mfu": fast_rate * flops / peak if peak else None,
            "engine": engine.stats.to_json(), "mirror_requests_missing_from_task": len(missing),
        },
        "baseline": {
            "seconds": baseline_seconds, "sweeps": c.sweeps, "forwards": c.forwards,
            "processed_tokens": c.real_tokens, "padded_tokens": c.padded_tokens,
            "processed_tokens_per_second": c.real_tokens / baseline_seconds,
            "distinct_tokens_per_second": tokens / baseline_seconds,
            "mfu": c.real_tokens / baseline_seconds * flops / peak if peak else None,
            "batch_size": best, "runs": best_timing["runs"], "by_sweep": c.by_sweep,
            "by_batch_size": {str(size): timing[f"baseline_{size}"] for size in args.baseline_batch_size},
        },
        "ratios": {"speedup_wall": ratio(baseline_seconds, fast_seconds),
                   "speedup_by_baseline_batch_size": {
                       str(size): ratio(timing[f"baseline_{size}"]["median"], fast_seconds)
                       for size in args.baseline_batch_size},
                   "baseline_tokens_processed_per_distinct_token": c.real_tokens / tokens},
        "agreement": agreement,
    })
    report(result)
    return result


def report(result: dict[str, Any]) -> None:
    fast, baseline, agreement = result["fast"], result["baseline"], result["agreement"]
    print_table(f"scoring ({'toy, CPU figures are no GPU evidence' if result['toy'] else 'full size'})", {
        "device": result["environment"]["device_name"],
        "distinct Score requests": fast["distinct_requests"],
        "fast tokens/s": fast["tokens_per_second"], "fast MFU": fast["mfu"],
        "baseline processed tokens/s": baseline["processed_tokens_per_second"], "baseline MFU": baseline["mfu"],
        "speed-up (baseline s / fast s)": result["ratios"]["speedup_wall"],
        "max per-item NLL difference": agreement["max_item_nll_diff"],
        "metric values agree": agreement["agree"],
    })


def main(argv: list[str] | None = None) -> int:
    return script_main("scoring", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
