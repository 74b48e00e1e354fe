"""Quantization (`quantization`, Zhang et al. ICLR 2025): does rounding the weights bring forgotten facts back?

The unlearned model is reloaded quantized and the tasks' forget metrics are re-run; the report gives
delta = quantized - full precision per metric. On CUDA with bitsandbytes installed the model is reloaded
with `BitsAndBytesConfig` as in the paper (4-bit: FP4, no double quantisation, bf16 model dtype; NF4;
8-bit LLM.int8). Elsewhere (`method=auto` on a CPU, or `method=simulate`) the documented fallback of
`quant_sim` rounds a copy's linear weights to the same grids. `method=bitsandbytes` without CUDA or
bitsandbytes is an error, never a silent fallback.
"""

from __future__ import annotations

import importlib.util
import tempfile
from dataclasses import dataclass
from typing import Any

import torch

from mu_eval import attack_inputs
from mu_eval.attack import AttackContext, AttackError, ConfiguredAttack
from mu_eval.attacks.common import evaluate_backend, evaluate_model, free_memory, plain_copy, require_torch_model
from mu_eval.attacks.quant_sim import MODES, simulate_quantization
from mu_eval.backends.dtype_keyword import dtype_argument
from mu_eval.options import option
from mu_eval.task import TaskResult


def bitsandbytes_available() -> tuple[bool, str]:
    """Whether bitsandbytes can run here, and if not, why."""
    missing = []
    if not torch.cuda.is_available():
        missing.append("no CUDA device")
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("the bitsandbytes package is not installed (pip install bitsandbytes)")
    return not missing, "; ".join(missing)


def bitsandbytes_config(mode: str) -> Any:
    from transformers import BitsAndBytesConfig

    kind, code = MODES[mode]
    if kind == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=code, bnb_4bit_use_double_quant=False)
    return BitsAndBytesConfig(load_in_8bit=True)


def describe_mode(mode: str, method: str, block_size: int) -> dict[str, Any]:
    kind, code = MODES[mode]
    if kind == "4bit":
        return {"bits": 4, "quant_type": code, "block_size": 64 if method == "bitsandbytes" else block_size,
                "double_quant": False}
    return {"bits": 8, "scheme": "LLM.int8 row-wise absmax" + ("" if method == "bitsandbytes" else " (weights)")}


def deltas(full: TaskResult, quantized: TaskResult, names: list[str]) -> dict[str, dict[str, float | None]]:
    table = {}
    before, after = attack_inputs.metric_values(full, names), attack_inputs.metric_values(quantized, names)
    for name in names:
        a, b = before[name], after[name]
        table[name] = {"full": a, "quantized": b, "delta": None if a is None or b is None else b - a}
    return table


@dataclass
class QuantizationAttackOptions:
    """The options of `QuantizationAttack` (`--attack-args`)."""

    modes: list[str] = option(default_factory=lambda: ["4bit", "nf4", "8bit"], choices=MODES,
                              help="4bit (= fp4, bitsandbytes default), nf4, 8bit")
    method: str = option("auto", choices=("auto", "bitsandbytes", "simulate"),
                         help="bitsandbytes, simulate (CPU rounding), or auto (bitsandbytes when CUDA and bitsandbytes "
                              "are present)")
    block_size: int = option(64, minimum=1, help="block size of the simulated 4-bit quantisation")


class QuantizationAttack(ConfiguredAttack):
    name = "quantization"
    description = "Reload the model in 4-bit (FP4, NF4) and 8-bit and report the change of the forget metrics."
    Options = QuantizationAttackOptions

    def run(self, ctx: AttackContext) -> dict[str, Any]:
        config = self.settings(ctx.options)
        model = require_torch_model(ctx, self.name)
        available, why = bitsandbytes_available()
        method = config["method"]
        if method == "bitsandbytes" and not available:
            raise AttackError(
                f"attack 'quantization': method=bitsandbytes needs CUDA and bitsandbytes ({why}); use "
                "method=simulate for the CPU fallback that rounds weights to the same grids (docs/attacks.md)"
            )
        if method == "auto":
            method = "bitsandbytes" if available else "simulate"
        if config["block_size"] < 1:
            raise AttackError("attack 'quantization': block_size must be positive")
        names = {t: attack_inputs.forget_metric_names(task, ctx.results[t]) for t, task in ctx.tasks.items()}
        modes: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="mu-eval-quant-") as folder:
            saved = None
            for mode in dict.fromkeys(config["modes"] or []):
                section: dict[str, Any] = {"config": describe_mode(mode, method, config["block_size"])}
                if method == "simulate":
                    copy = plain_copy(model)
                    section["weights"] = simulate_quantization(copy, mode, config["block_size"])
                    results = evaluate_model(ctx, copy, ctx.tasks, f"simulated {mode}")
                    del copy
                else:
                    saved = saved or self._save(ctx, model, folder)
                    results = evaluate_backend(ctx, self._load(ctx, saved, mode), ctx.tasks)
                free_memory()
                section["tasks"] = {
                    t: {"forget_metrics_declared": names[t][1],
                        "metrics": deltas(ctx.results[t], results[t], names[t][0])}
                    for t in ctx.tasks
                }
                modes[mode] = section
        return {
            "method": "bitsandbytes" if method == "bitsandbytes" else "simulated",
            "note": None if method == "bitsandbytes" else
            "weights rounded on the bitsandbytes grids (quant_sim); activations and matmuls stay in full precision",
            "bitsandbytes_unavailable": None if available else why,
            "modes": modes,
        }

    @staticmethod
    def _save(ctx: AttackContext, model: Any, folder: str) -> str:
        """The current weights (a method may have changed them since loading) as a checkpoint folder."""
        copy = plain_copy(model)
        copy.save_pretrained(folder)
        ctx.backend.tokenizer.save_pretrained(folder)
        del copy
        return folder

    @staticmethod
    def _load(ctx: AttackContext, folder: str, mode: str) -> Any:
        from transformers import AutoModelForCausalLM

        from mu_eval.attacks.common import backend_for

        device = ctx.device or f"cuda:{torch.cuda.current_device()}"
        model = AutoModelForCausalLM.from_pretrained(
            folder, quantization_config=bitsandbytes_config(mode), device_map={"": device},
            **dtype_argument(torch.bfloat16),
        )
        model.eval()
        return backend_for(model, ctx, f"bitsandbytes {mode}")
