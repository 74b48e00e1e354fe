"""Generation throughput: new tokens/s of greedy generation over the TOFU questions.

Fast path: one `Generate(prompt, 200)` per question of the four TOFU forget10 eval sets (the registered
task's prompts when it is installed), answered by mu_eval's Engine and HFBackend (length-sorted,
token-budget batches, finished rows retiring). Baseline, side by side in the same run: plain
`model.generate` on left-padded batches of `--baseline-batch-size` prompts (32 and 256) in dataset order.
Every path runs `--repeats` times (3), interleaved; medians are compared, against the fastest baseline.
New tokens are counted up to (not including) the first EOS.

    python -m benchmarks.bench_generation             # full size on a GPU
    python -m benchmarks.bench_generation --toy       # CI smoke size (default without CUDA)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks.common import (
    build_setup,
    fastest_baseline,
    interleaved,
    make_backend,
    print_table,
    ratio,
    result_header,
    script_main,
    tolerances,
)
from benchmarks.tofu import load_plan, task_requests
from benchmarks.tofu_baseline import SweepCounters, generate_plain

TARGETS = {"fast.new_tokens_per_second": ">= 15000 on an H100 (bf16, Llama-3.2-1B shape)",
           "agreement.agree": "true"}
WARMUP_PROMPTS = 8


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: 200, or 24 with --toy")
    parser.add_argument("--generation-budget", type=int, default=None,
                        help="tokens (rows x (prompt + new)) per fast-path batch; default: what the key/value "
                             "cache fits in free GPU memory, else the engine's token budget")
    parser.add_argument("--generation-cache", choices=["dynamic", "static"], default="dynamic",
                        help="fast path's key/value cache; static compiles the decoding step on CUDA (per shape)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from mu_eval.backends.hf_encoding import encode_prompt
    from mu_eval.engine import Engine
    from mu_eval.requests import Generate, cut_at_stop

    setup = build_setup(args)
    max_new = args.max_new_tokens or (24 if setup.toy else 200)
    backend = make_backend(setup)
    plan = load_plan(setup.data_dir, backend.chat_formatter(), max_new)
    from_task, source = task_requests(backend, setup.data_dir)
    pool = [r for r in from_task if isinstance(r, Generate)] if from_task is not None else plan.generate_requests()
    requests = list(dict.fromkeys(Generate(r.prompt, max_new, r.stop) for r in pool))
    prompt_ids = [encode_prompt(setup.tokenizer, r.prompt, None) for r in requests]

    head = requests[:WARMUP_PROMPTS]
    cache = {"generation_cache": args.generation_cache}
    Engine(make_backend(setup, **cache), progress=False).run([Generate(r.prompt, 8, r.stop) for r in head])
    for size in args.baseline_batch_size:
        generate_plain(setup.model, setup.tokenizer, prompt_ids[:WARMUP_PROMPTS], 8, size, setup.device)

    def fast_path() -> tuple[Any, Any]:
        engine = Engine(make_backend(setup, **cache), progress=False, generation_budget=args.generation_budget)
        return engine.run(requests), engine

    def baseline_path(size: int) -> Any:
        def run_once() -> tuple[Any, SweepCounters]:
            counters = SweepCounters()
            return generate_plain(setup.model, setup.tokenizer, prompt_ids, max_new, size, setup.device,
                                  counters), counters
        return run_once

    paths = {"fast": fast_path, **{f"baseline_{size}": baseline_path(size) for size in args.baseline_batch_size}}
    values, timing = interleaved(paths, args.repeats, setup.device)
    fast, engine = values["fast"]
    fast_seconds = timing["fast"]["median"]
    best, (plain, counters), best_timing = fastest_baseline(args.baseline_batch_size, values, timing)
    baseline_seconds = best_timing["median"]
    fast_tokens = sum(r.num_new_tokens for r in fast)
    baseline_texts = [cut_at_stop(text, r.stop) for (text, _), r in zip(plain, requests)]
    identical = sum(a.text == b for a, b in zip(fast, baseline_texts)) / len(requests)
    same_counts = sum(a.num_new_tokens == n for a, (_, n) in zip(fast, plain)) / len(requests)
    needed = tolerances(setup.dtype)["min_identical_generations"]

    result = result_header("generation", setup, TARGETS)
    result.update({
        "requests_source": source, "prompts": len(requests), "max_new_tokens": max_new,
        "generation_cache": args.generation_cache,
        "prompt_tokens": sum(len(p) for p in prompt_ids),
        "fast": {"seconds": fast_seconds, "runs": timing["fast"]["runs"], "new_tokens": fast_tokens,
                 "new_tokens_per_second": fast_tokens / fast_seconds, "engine": engine.stats.to_json()},
        "baseline": {"seconds": baseline_seconds, "new_tokens": counters.new_tokens,
                     "new_tokens_per_second": counters.new_tokens / baseline_seconds,
                     "generate_calls": counters.generate_calls, "batch_size": best,
                     "runs": best_timing["runs"],
                     "by_batch_size": {str(size): timing[f"baseline_{size}"] for size in args.baseline_batch_size}},
        "ratios": {"speedup_wall": ratio(baseline_seconds, fast_seconds),
                   "speedup_by_baseline_batch_size": {
                       str(size): ratio(timing[f"baseline_{size}"]["median"], fast_seconds)
                       for size in args.baseline_batch_size},
                   "new_tokens_per_second": ratio(fast_tokens / fast_seconds, counters.new_tokens / baseline_seconds)},
        "agreement": {"agree": identical >= needed, "identical_generations": identical,
                      "identical_new_token_counts": same_counts, "min_identical_generations": needed},
    })
    print_table(f"generation ({'toy, CPU figures are no GPU evidence' if setup.toy else 'full size'})", {
        "device": result["environment"]["device_name"], "prompts": len(requests), "max new tokens": max_new,
        "fast new tokens/s": result["fast"]["new_tokens_per_second"],
        "baseline new tokens/s": result["baseline"]["new_tokens_per_second"],
        "speed-up (baseline s / fast s)": result["ratios"]["speedup_wall"],
        "identical generations": identical, "agree": result["agreement"]["agree"],
    })
    return result


def main(argv: list[str] | None = None) -> int:
    return script_main("generation", __doc__.splitlines()[0], run, argv, add_options)


if __name__ == "__main__":
    sys.exit(main())
