"""What every benchmark script shares: arguments, the model and data, timing, peaks, comparison, output.

The full-size model is a randomly initialised Llama-3.2-1B architecture (bf16 on a GPU); `--toy` (the
default without CUDA) swaps in a tiny config and a few dozen items so that CI can run the scripts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.synthetic import TofuSizes, tofu_configs, training_texts, wmdp_rows, write_tofu

T = TypeVar("T")
SCHEMA_VERSION = 2
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Dense bf16 tensor-core peaks (FLOP/s) by device-name fragment, most specific first (NVIDIA datasheets).
PEAK_BF16_FLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM (the device name reads "H100 80GB HBM3")
    ("H200", 989e12),
    ("A100", 312e12),
]

#: Llama-3.2-1B as a LlamaConfig (the weights are random; only shapes and dtype matter for speed).
LLAMA_3_2_1B = dict(
    vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
    num_key_value_heads=8, tie_word_embeddings=True, max_position_embeddings=131072, rms_norm_eps=1e-5,
    rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
)
TOY = dict(
    vocab_size=2048, hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=1024, rms_norm_eps=1e-5,
    rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
    initializer_range=0.1,  # sharper random logits: varied greedy text, so ROUGE is not trivially 0
)


def peak_flops(device_name: str | None) -> float | None:
    """Dense bf16 peak of a device by name, or None when the device is not in the table."""
    for fragment, peak in PEAK_BF16_FLOPS:
        if device_name and fragment in device_name:
            return peak
    return None


def parse_args(description: str, argv: list[str] | None, name: str,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """Common options; `--toy` defaults to on when CUDA is not available."""
    import torch

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--toy", action=argparse.BooleanOptionalAction, default=None,
                        help="tiny model and a few dozen items (default: on without CUDA)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--dtype", default=None, choices=["bfloat16", "float16", "float32"],
                        help="model dtype (default: bfloat16 on CUDA, float32 on CPU)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / f"bench_{name}.json",
                        help="JSON file written (default: the name results_table reads)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where data and tokenizer go (default: temp)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None,
                        help="keep only the first N rows of every data set (a quick sanity run, not a figure)")
    parser.add_argument("--baseline-batch-size", type=int, nargs="+", default=[32, 256],
                        help="rows per baseline batch; each value is timed as its own path (default: 32 256)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs of every path, interleaved; the median is reported (default: 3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: 1 in toy mode on CPU, torch's default otherwise)")
    if extra:
        extra(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1 or any(size < 1 for size in args.baseline_batch_size):
        parser.error("--repeats and --baseline-batch-size take positive integers")
    args.baseline_batch_size = list(dict.fromkeys(args.baseline_batch_size))
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.toy = (not args.device.startswith("cuda")) if args.toy is None else args.toy
    args.dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    if args.threads is None and args.toy and args.device == "cpu":
        args.threads = 1  # small matrices on a shared CI machine run faster and steadier on one thread
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


@dataclass
class Setup:
    """The model, tokenizer, data directory and benchmark rows one script run works on."""

    model: Any
    tokenizer: Any
    device: str
    dtype: str
    toy: bool
    data_dir: Path
    tofu: dict[str, list[dict]]
    mc_rows: list[dict]
    parameters: int
    limit: int | None = None
    repeats: int = 1


def build_setup(args: argparse.Namespace) -> Setup:
    """Synthetic data written to disk, a tokenizer trained on it, and a random model of the chosen size."""
    import datasets
    import torch

    from mu_eval.tiny import build_tokenizer

    datasets.disable_progress_bars()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="mu-eval-bench-"))  # script_main passes a temporary one
    sizes = TofuSizes.toy() if args.toy else TofuSizes()
    configs = tofu_configs(sizes, seed=args.seed)
    mc_rows = wmdp_rows(36 if args.toy else None, seed=args.seed)
    if args.limit:
        configs = {name: rows[: args.limit] for name, rows in configs.items()}
        mc_rows = mc_rows[:: max(1, len(mc_rows) // args.limit)][: args.limit]
    data_dir = work / "data"
    write_tofu(data_dir, configs)
    tokenizer = build_tokenizer(training_texts(configs, mc_rows), vocab_size=1024 if args.toy else 32000)
    model = build_model(TOY if args.toy else LLAMA_3_2_1B, tokenizer, getattr(torch, args.dtype), args.device,
                        args.seed)
    parameters = sum(p.numel() for p in model.parameters())  # tied embeddings counted once
    return Setup(model, tokenizer, args.device, args.dtype, args.toy, data_dir, configs, mc_rows, parameters,
                 args.limit, args.repeats)


def build_model(config_values: dict, tokenizer: Any, dtype: Any, device: str, seed: int) -> Any:
    """A random LlamaForCausalLM built on `device`.

    The (tied) embedding rows the tokenizer never produces are scaled down and the pad row zeroed, so
    that greedy generation emits decodable text and never padding; the compute is unchanged.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**config_values, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    with torch.no_grad():
        embedding = model.get_input_embeddings().weight
        embedding[len(tokenizer):] *= 0.1
        embedding[tokenizer.pad_token_id] = 0
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def make_backend(setup: Setup, **options: Any) -> Any:
    from mu_eval.backends.hf import HFBackend

    return HFBackend.from_model(setup.model, setup.tokenizer, model_id="random-llama-benchmark", **options)


def synchronize(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], T], device: str) -> tuple[T, float]:
    """Run `fn` between two device synchronisations; return its value and the wall seconds."""
    synchronize(device)
    started = time.perf_counter()
    value = fn()
    synchronize(device)
    return value, time.perf_counter() - started


def interleaved(paths: dict[str, Callable[[], Any]], repeats: int, device: str) -> tuple[dict[str, Any], dict]:
    """Run every path `repeats` times, interleaved (round r starts at path r mod n, so no path always runs
    first or after the same neighbour), each run between device synchronisations.

    Returns each path's value from its last run and, per path, its wall seconds: every run and the median.
    Each path must build what it needs afresh (an engine remembers answers).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    names = list(paths)
    values: dict[str, Any] = {}
    runs: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            values[name], seconds = timed(paths[name], device)
            runs[name].append(seconds)
    return values, {name: {"median": statistics.median(times), "runs": times} for name, times in runs.items()}


def fastest_baseline(sizes: list[int], values: dict[str, Any], timing: dict) -> tuple[int, Any, dict]:
    """Of the `baseline_{size}` paths `interleaved` ran, the batch size with the lowest median, its value and its
    timing (median and runs): the headline ratio is against the best the baseline can do."""
    best = min(sizes, key=lambda size: timing[f"baseline_{size}"]["median"])
    return best, values[f"baseline_{best}"], timing[f"baseline_{best}"]


def environment(setup: Setup) -> dict[str, Any]:
    """Device name, library versions and settings recorded in every result file."""
    import tokenizers
    import torch
    import transformers

    import mu_eval

    cuda = setup.device.startswith("cuda")
    name = torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine()
    return {
        "device": setup.device, "device_name": name, "peak_bf16_flops": peak_flops(name) if cuda else None,
        "dtype": setup.dtype, "torch": torch.__version__, "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__, "mu_eval": mu_eval.__version__, "python": platform.python_version(),
        "cuda": torch.version.cuda, "cpu_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
    }


def model_info(setup: Setup) -> dict[str, Any]:
    config = setup.model.config
    return {
        "architecture": "toy Llama" if setup.toy else "Llama-3.2-1B (random weights)",
        "parameters": setup.parameters, "vocab_size": config.vocab_size, "tokenizer_vocab": len(setup.tokenizer),
        "hidden_size": config.hidden_size, "layers": config.num_hidden_layers,
        "attn_implementation": getattr(config, "_attn_implementation", None),
        "flops_per_token": 2 * setup.parameters,
    }


def tolerances(dtype: str) -> dict[str, Any]:
    """Agreement tolerances: tight in float32 (the strict check; run with --dtype float32 on a GPU for it).

    In bf16/fp16 logits depend on batch shape and lm-eval's log-softmax runs in the model's
    dtype, so greedy generations and multiple-choice picks may differ at near-ties: values derived from
    them (ROUGE, model utility, accuracies) are then reported but not judged; the share of identical
    choices and argmax flags is judged instead."""
    if dtype == "float32":
        return {"rtol": 1e-4, "atol": 1e-5, "item_atol": 1e-3, "min_greedy_flag_agreement": 1.0,
                "min_identical_generations": 1.0, "min_same_choice": 1.0, "not_judged": []}
    return {"rtol": 5e-2, "atol": 1e-2, "item_atol": 0.15, "min_greedy_flag_agreement": 0.99,
            "min_identical_generations": 0.0, "min_same_choice": 0.95,
            "not_judged": ["rougeL_recall", "model_utility", "acc_"]}


def compare_metrics(fast: dict[str, float | None], baseline: dict[str, float | None], dtype: str) -> dict:
    """Per-metric absolute differences and whether every judged metric agrees within the dtype's tolerance."""
    tol = tolerances(dtype)
    rows, agree = {}, True
    for name in sorted(set(fast) | set(baseline)):
        a, b = fast.get(name), baseline.get(name)
        if a is None or b is None or _nan(a) or _nan(b):
            ok, diff = (a is None or _nan(a)) and (b is None or _nan(b)), None
        else:
            diff = abs(a - b)
            ok = diff <= tol["atol"] + tol["rtol"] * abs(b)
        judged = not any(part in name for part in tol["not_judged"])
        agree &= bool(ok) or not judged
        rows[name] = {"fast": a, "baseline": b, "abs_diff": diff, "agree": bool(ok), "judged": judged}
    return {"agree": agree, "tolerance": tol, "metrics": rows}


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def result_header(benchmark: str, setup: Setup, targets: dict[str, str]) -> dict[str, Any]:
    return {
        "benchmark": benchmark, "schema_version": SCHEMA_VERSION, "toy": setup.toy, "limit": setup.limit,
        "repeats": setup.repeats, "timing": f"median of {setup.repeats} interleaved runs per path",
        "note": "CPU toy-size figures say nothing about GPU performance" if setup.toy else None,
        "environment": environment(setup), "model": model_info(setup), "targets": targets,
    }


def write_result(path: Path, data: dict[str, Any]) -> Path:
    """Write the JSON atomically (temporary file, then rename) and print where it went."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(_clean(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    temporary.replace(path)
    print(f"wrote {path}")
    return path


def _clean(value: Any) -> Any:
    """JSON-ready copy: non-finite floats become null, paths become strings."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def script_main(name: str, description: str, run: Callable[[argparse.Namespace], dict],
                argv: list[str] | None = None,
                extra: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """Parse the options, run, write the JSON; exit status 1 when the two paths disagree."""
    args = parse_args(description, argv, name, extra)
    with tempfile.TemporaryDirectory(prefix="mu-eval-bench-") as temporary:
        args.work_dir = args.work_dir or Path(temporary)
        result = run(args)
    write_result(args.output, result)
    return 0 if result["agreement"]["agree"] else 1


def ratio(slow: float | None, fast: float | None) -> float | None:
    """`slow / fast`, or None when either is missing or zero."""
    if not slow or not fast:
        return None
    return slow / fast


def print_table(title: str, rows: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for key, value in rows.items():
        shown = f"{value:.6g}" if isinstance(value, float) else value
        print(f"  {key:<38} {shown}")
