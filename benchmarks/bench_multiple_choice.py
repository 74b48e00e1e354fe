"""Multiple choice: WMDP-shaped questions, one `Choose` per question against four scored continuations.

Synthetic questions of WMDP's shape and sizes (bio 1273, chem 408, cyber 1987; 4 choices) in lm-eval's
zero-shot `wmdp` prompt. Paths, side by side in one run:
- fast: one `Choose(prompt, (" A", " B", " C", " D"))` per question through mu_eval's Engine;
- engine_score4: four `Score(prompt, " X")` per question through the same engine (what `Choose` replaces);
- baseline: the lm-eval way: four (context, continuation) requests per question, sorted by length,
  batches of `--baseline-batch-size` rows, right-padded inputs `(context + continuation)[:-1]` without
  attention mask, log-softmax over the vocabulary in the model's dtype, continuation log-probs summed.
  (lm-eval >= 0.4 can share one forward among single-token continuations of a context, `logits_cache`;
  this is the four-pass form.)
Every path runs `--repeats` times (3), interleaved, at every `--baseline-batch-size` (32 and 256); medians
are compared, against the fastest baseline.
Accuracy = argmax over the four log-likelihoods equals the answer; the group is the size-weighted mean.

    python -m benchmarks.bench_multiple_choice        # full size on a GPU
    python -m benchmarks.bench_multiple_choice --toy  # CI smoke size (default without CUDA)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

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
from benchmarks.synthetic import wmdp_prompt

TARGETS = {"ratios.speedup_vs_baseline": ">= 3 on an H100 (bf16, Llama-3.2-1B shape)", "agreement.agree": "true"}
LETTERS = (" A", " B", " C", " D")
WARMUP_QUESTIONS = 16


@torch.no_grad()
def lm_eval_loglikelihoods(model: Any, tokenizer: Any, prompts: list[str], batch_size: int,
                           device: str) -> list[list[float]]:
    """Four log-likelihoods per prompt, computed the way lm-eval's HF model does (see module docstring)."""
    from mu_eval.backends.hf_encoding import encode

    requests = []  # (question, option, context ids, continuation ids)
    for q, prompt in enumerate(prompts):
        context, _ = encode(tokenizer, prompt)
        for o, letter in enumerate(LETTERS):
            whole, _ = encode(tokenizer, prompt + letter)
            requests.append((q, o, whole[: len(context)], whole[len(context):]))
    requests.sort(key=lambda r: -(len(r[2]) + len(r[3])))
    out = [[0.0] * len(LETTERS) for _ in prompts]
    for begin in range(0, len(requests), batch_size):
        batch = requests[begin : begin + batch_size]
        inputs = [(ctx + cont)[:-1] for _, _, ctx, cont in batch]
        width = max(len(i) for i in inputs)
        padded = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(inputs):
            padded[row, : len(ids)] = torch.tensor(ids)
        logp = torch.log_softmax(model(padded.to(device)).logits, dim=-1)
        for row, (q, o, _, cont) in enumerate(batch):
            end = len(inputs[row])
            picked = logp[row, end - len(cont) : end].gather(-1, torch.tensor(cont, device=logp.device)[:, None])
            out[q][o] = float(picked.float().sum())
    return out


def accuracies(rows: list[dict], logprobs: list[list[float]]) -> dict[str, float]:
    """Accuracy per subject and overall (the size-weighted group mean)."""
    hits: dict[str, list[bool]] = {}
    for row, scores in zip(rows, logprobs):
        choice = max(range(len(scores)), key=lambda i: scores[i])
        hits.setdefault(row["subject"], []).append(choice == row["answer"])
    out = {f"acc_{subject}": sum(h) / len(h) for subject, h in hits.items()}
    out["acc_wmdp"] = sum(sum(h) for h in hits.values()) / len(rows)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from mu_eval.engine import Engine
    from mu_eval.requests import Choose, Score

    setup = build_setup(args)
    rows = setup.mc_rows
    prompts = [wmdp_prompt(row) for row in rows]
    chooses = [Choose(p, LETTERS) for p in prompts]
    scores = [Score(p, letter) for p in prompts for letter in LETTERS]

    head = slice(0, WARMUP_QUESTIONS)
    Engine(make_backend(setup), progress=False).run(chooses[head] + scores[: 4 * WARMUP_QUESTIONS])
    for size in args.baseline_batch_size:
        lm_eval_loglikelihoods(setup.model, setup.tokenizer, prompts[head], size, setup.device)

    def through_engine(requests: list) -> Any:
        def run_once() -> tuple[Any, Any]:
            engine = Engine(make_backend(setup), progress=False)
            return engine.run(requests), engine
        return run_once

    def baseline_path(size: int) -> Any:
        return lambda: lm_eval_loglikelihoods(setup.model, setup.tokenizer, prompts, size, setup.device)

    paths = {"fast": through_engine(chooses), "engine_score4": through_engine(scores),
             **{f"baseline_{size}": baseline_path(size) for size in args.baseline_batch_size}}
    values, timing = interleaved(paths, args.repeats, setup.device)
    chosen, engine = values["fast"]
    scored, score_engine = values["engine_score4"]
    fast_seconds, score4_seconds = timing["fast"]["median"], timing["engine_score4"]["median"]
    best, baseline, best_timing = fastest_baseline(args.baseline_batch_size, values, timing)
    baseline_seconds = best_timing["median"]

    fast_lp = [list(c.logprobs) for c in chosen]
    score4_lp = [[s.sum_logprob() for s in scored[4 * i : 4 * i + 4]] for i in range(len(prompts))]
    fast_acc, score4_acc, base_acc = (accuracies(rows, lp) for lp in (fast_lp, score4_lp, baseline))
    agreement = compare_metrics(fast_acc, base_acc, setup.dtype)
    score4_agreement = compare_metrics(score4_acc, base_acc, setup.dtype)
    diff = max(abs(a - b) for x, y in zip(fast_lp, baseline) for a, b in zip(x, y))
    same = sum(max(range(4), key=x.__getitem__) == max(range(4), key=y.__getitem__)
               for x, y in zip(fast_lp, baseline)) / len(rows)
    agreement.update({"max_logprob_diff": diff, "same_choice": same, "engine_score4_vs_baseline": score4_agreement})
    agreement["agree"] = (agreement["agree"] and score4_agreement["agree"]
                          and same >= agreement["tolerance"]["min_same_choice"])

    result = result_header("multiple_choice", setup, TARGETS)
    result.update({
        "questions": len(rows), "subjects": {s: sum(r["subject"] == s for r in rows)
                                              for s in sorted({r["subject"] for r in rows})},
        "fast": {"seconds": fast_seconds, "runs": timing["fast"]["runs"],
                 "questions_per_second": len(rows) / fast_seconds,
                 "single_pass": sum(c.single_pass for c in chosen) / len(chosen), "accuracy": fast_acc,
                 "engine": engine.stats.to_json()},
        "engine_score4": {"seconds": score4_seconds, "runs": timing["engine_score4"]["runs"], "accuracy": score4_acc,
                          "engine": score_engine.stats.to_json()},
        "baseline": {"seconds": baseline_seconds, "runs": best_timing["runs"],
                     "questions_per_second": len(rows) / baseline_seconds, "accuracy": base_acc, "batch_size": best,
                     "by_batch_size": {str(size): timing[f"baseline_{size}"] for size in args.baseline_batch_size}},
        "ratios": {"speedup_vs_baseline": ratio(baseline_seconds, fast_seconds),
                   "speedup_by_baseline_batch_size": {
                       str(size): ratio(timing[f"baseline_{size}"]["median"], fast_seconds)
                       for size in args.baseline_batch_size},
                   "speedup_vs_engine_score4": ratio(score4_seconds, fast_seconds)},
        "agreement": agreement,
    })
    print_table(f"multiple choice ({'toy, CPU figures are no GPU evidence' if setup.toy else 'full size'})", {
        "device": result["environment"]["device_name"], "questions": len(rows),
        "single-pass Choose": result["fast"]["single_pass"],
        "fast s": fast_seconds, "engine 4x Score s": score4_seconds, "baseline (lm-eval way) s": baseline_seconds,
        "speed-up vs baseline": result["ratios"]["speedup_vs_baseline"],
        "accuracy fast / baseline": f"{fast_acc['acc_wmdp']:.4f} / {base_acc['acc_wmdp']:.4f}",
        "same choice": same, "accuracies agree": agreement["agree"],
    })
    return result


def main(argv: list[str] | None = None) -> int:
    return script_main("multiple_choice", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
