"""Greedy generation through the vllm backend and through the hf backend, side by side in one run.

The same `Generate` requests (synthetic TOFU-style questions, chat-formatted) go through `Engine` with each
backend on one random Llama checkpoint saved to a temporary folder (float32; hidden 256, 4 layers, 8 heads:
head size 32, the smallest vLLM's CPU attention takes). Each backend answers a few prompts first (warm-up);
then `--repeats` timed passes of all of them alternate between the backends, and the medians are compared.
The texts must be identical, else the script exits with status 1. vLLM's engine start is reported but not
part of the ratio.

Run in the vLLM environment (docs/vllm.md):

    python -m benchmarks.bench_vllm                       # CPU: 64 prompts, 64 new tokens
    python -m benchmarks.bench_vllm --prompts 512 --max-new-tokens 200 --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WARMUP = 4
SHAPE = {"hidden_size": 256, "num_layers": 4, "num_heads": 8, "intermediate_size": 688}


def build_checkpoint(folder: Path, seed: int) -> Path:
    from mu_eval.tasks.synthetic_profiles.generator import build_benchmark
    from mu_eval.tiny import TINY_CHAT_TEMPLATE, build_model, build_tokenizer, save

    rows = build_benchmark(20, seed)["full"]
    texts = [f"{row['question']} {row['answer']}" for row in rows]
    tokenizer = build_tokenizer(texts, vocab_size=2048, chat_template=TINY_CHAT_TEMPLATE)
    model = build_model(len(tokenizer), seed=seed, tokenizer=tokenizer, max_position_embeddings=1024, **SHAPE)
    return save(model, tokenizer, folder / "model")


def questions(count: int, seed: int) -> list[str]:
    from mu_eval.tasks.synthetic_profiles.generator import build_benchmark

    rows = build_benchmark(max(20, count // 20 + 1), seed)["full"]
    return [row["question"] for row in rows][:count]


def timed_run(backend: Any, requests: list[Any]) -> tuple[list[Any], float]:
    """One timed pass through a fresh engine (no answer cache, so every request is answered)."""
    from mu_eval.engine import Engine

    engine = Engine(backend, progress=False)
    started = time.perf_counter()
    answers = engine.run(requests)
    return answers, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per backend, alternating")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the hf backend (vLLM's CPU worker computes on one by default)")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "results" / "vllm.json")
    args = parser.parse_args(argv)

    import torch
    import vllm

    from mu_eval.backends.hf import HFBackend
    from mu_eval.backends.vllm import VLLMBackend
    from mu_eval.requests import Generate

    with tempfile.TemporaryDirectory() as folder:
        checkpoint = build_checkpoint(Path(folder), args.seed)
        hf = HFBackend.from_pretrained(str(checkpoint), {"dtype": "float32"}, device=args.device)
        chat = hf.chat_formatter()
        requests = [Generate(chat(q), args.max_new_tokens) for q in questions(args.prompts, args.seed)]
        started = time.perf_counter()
        served = VLLMBackend.from_pretrained(str(checkpoint), {"dtype": "float32"}, device=args.device)
        engine_start = time.perf_counter() - started
        torch.set_num_threads(args.threads)
        from mu_eval.engine import Engine

        for backend in (served, hf):  # warm-up
            Engine(backend, progress=False).run(requests[:WARMUP])
        hf_times, vllm_times = [], []
        for _ in range(args.repeats):  # alternating, so that a change of the machine's load hits both
            vllm_answers, seconds = timed_run(served, requests)
            vllm_times.append(seconds)
            hf_answers, seconds = timed_run(hf, requests)
            hf_times.append(seconds)
        served.shutdown()
    hf_seconds, vllm_seconds = statistics.median(hf_times), statistics.median(vllm_times)
    identical = [a.text for a in vllm_answers] == [a.text for a in hf_answers]
    new_tokens = sum(a.num_new_tokens for a in hf_answers)
    result = {
        "benchmark": "vllm_generation",
        "device": args.device, "platform": platform.platform(), "hf_threads": args.threads,
        "versions": {"torch": torch.__version__, "vllm": vllm.__version__},
        "model": dict(SHAPE, dtype="float32"), "prompts": len(requests), "max_new_tokens": args.max_new_tokens,
        "new_tokens": new_tokens,
        "hf_seconds": hf_seconds, "vllm_seconds": vllm_seconds, "hf_runs": hf_times, "vllm_runs": vllm_times,
        "vllm_engine_start_seconds": engine_start,
        "ratio_hf_over_vllm": hf_seconds / vllm_seconds, "identical_texts": identical,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{len(requests)} prompts, {new_tokens} new tokens: hf {hf_seconds:.2f} s, vllm {vllm_seconds:.2f} s "
          f"(medians of {args.repeats}; ratio {hf_seconds / vllm_seconds:.2f}x; "
          f"engine start {engine_start:.0f} s, not counted); "
          f"identical texts: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
