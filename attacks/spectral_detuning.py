"""Pre-fine-tuning weight recovery (`spectral_detuning`, Horwitz, Kahana and Hoshen, ICML 2024).

N LoRA fine-tunes of one model give, per layer, W'_i = W_P + M_i with rank(M_i) <= r. Spectral DeTuning
recovers W_P layer by layer, without data or gradients, by alternating
M_i := best rank-`rank` approximation of W'_i - W* (randomised SVD, q = rank) and W* := mean(W'_i - M_i),
with the paper's increase-on-plateau rank scheduler (docs/attacks.md). The plain mean of the W'_i is the
"Mean-LoRA" baseline. W-Error = mean over layers of log10 MSE(W*, W_P) when the true base is known.

Library use: `recover(variants, rank=..., base=...)` returns the recovered layers and the errors;
`recover_layer(weights, rank)` is the algorithm on one layer; `save_recovered` writes a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from mu_eval import attack_inputs
from mu_eval.attack import AttackContext, AttackError, ConfiguredAttack
from mu_eval.attacks.common import evaluate_model, free_memory
from mu_eval.attacks.weights import AdapterWeights, CheckpointWeights, open_weights
from mu_eval.options import option

MSE_FLOOR = 1e-300


class IncreaseRankOnPlateau:
    """Rank scheduler: multiply (or add 1 to) the rank after `patience` epochs without relative improvement,
    capped at `end_rank`; from epoch T*(1 - force_end_rank_percent) on the rank is `end_rank`."""

    def __init__(self, iterations: int, end_rank: int, start_rank: int = 1, factor: int = 2,
                 factor_type: str = "mult", patience: int = 15, threshold: float = 0.0,
                 force_end_rank_percent: float = 0.5) -> None:
        if factor_type not in ("mult", "add"):
            raise ValueError(f"factor_type must be 'mult' or 'add', got {factor_type!r}")
        self.end_rank, self.rank = end_rank, min(start_rank, end_rank)
        self.factor, self.factor_type, self.patience, self.threshold = factor, factor_type, patience, threshold
        self.force_end_rank_step = iterations - iterations * force_end_rank_percent
        self.best, self.bad, self.epoch = math.inf, 0, 0

    def step(self, loss: float) -> int:
        self.epoch += 1
        if self.epoch < self.force_end_rank_step:
            if loss < self.best * (1 - self.threshold):
                self.best, self.bad = loss, 0
            else:
                self.bad += 1
            if self.bad > self.patience:
                grown = self.rank * self.factor if self.factor_type == "mult" else self.rank + 1
                self.rank, self.bad = min(grown, self.end_rank), 0
        else:
            self.rank = self.end_rank
        return self.rank


@dataclass
class LayerRecovery:
    weight: torch.Tensor
    rank: int
    loss: float


@torch.no_grad()
def recover_layer(weights: Sequence[torch.Tensor], rank: int, iterations: int = 300, *, start_rank: int = 1,
                  factor: int = 2, factor_type: str = "mult", patience: int = 15, threshold: float = 0.0,
                  force_end_rank_percent: float = 0.5, seed: int = 0) -> LayerRecovery:
    """Spectral DeTuning on one layer: the shared W_P of matrices W'_i = W_P + (rank <= `rank`)."""
    stacked = torch.stack(list(weights))
    rank = max(1, min(rank, *stacked.shape[-2:]))
    scheduler = IncreaseRankOnPlateau(iterations, rank, start_rank, factor, factor_type, patience, threshold,
                                      force_end_rank_percent)
    devices = [stacked.device] if stacked.device.type == "cuda" else []
    w_star = stacked.mean(0)
    loss = math.nan
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for _ in range(iterations):
            current = scheduler.rank
            u, s, v = torch.svd_lowrank(stacked - w_star, q=current)
            low_rank = (u * s[:, None, :]) @ v.transpose(-1, -2)
            w_star = (stacked - low_rank).mean(0)
            loss = float(((stacked - w_star - low_rank) ** 2).mean())
            scheduler.step(loss)
    return LayerRecovery(w_star, scheduler.rank, loss)


def estimate_rank(first: torch.Tensor, second: torch.Tensor, min_gap: float = 10.0) -> int:
    """LoRA rank from two fine-tunes: rank(W'_1 - W'_2) = r_1 + r_2 generically, so r = ceil(rank / 2).

    The numerical rank is where the spectrum of the difference drops most (by at least `min_gap` times):
    weights stored in float32 or bf16 leave rounding noise that a fixed float64 tolerance would count.
    """
    values = torch.linalg.svdvals(first.double() - second.double())
    if values.numel() < 2 or values[0] == 0:
        return 1
    ratios = values[:-1] / values[1:].clamp(min=float(values[0]) * 1e-300)
    drop = int(torch.argmax(ratios))
    rank = drop + 1 if float(ratios[drop]) >= min_gap else values.numel()
    return max(1, math.ceil(rank / 2))


def log10_mse(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    mse = float(((estimate.double() - truth.double().to(estimate.device)) ** 2).mean())
    return math.log10(max(mse, MSE_FLOOR))


@dataclass
class Recovery:
    """Recovered layers, per-layer details, and W-Error of the recovery and of Mean-LoRA (None without a base)."""

    weights: dict[str, torch.Tensor]
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    w_error: float | None = None
    mean_lora_w_error: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"n_layers": len(self.weights), "w_error": self.w_error, "mean_lora_w_error": self.mean_lora_w_error,
                "layers": self.layers}


def differing_layers(sources: list[Any]) -> list[str]:
    """2-D floating tensors present in every variant that are not identical across them."""
    if all(isinstance(s, AdapterWeights) for s in sources):
        return sorted({name for s in sources for name in s.deltas})
    others = [set(s.keys()) for s in sources[1:]]
    common = [k for k in sources[0].keys() if all(k in keys for keys in others)]
    names = []
    for name in common:
        first = sources[0].get(name)
        if first.ndim != 2 or not first.is_floating_point():
            continue
        if any(not torch.equal(first, s.get(name).to(first.dtype)) for s in sources[1:]):
            names.append(name)
    return names


def recover(variants: Sequence[str | Path | Mapping[str, torch.Tensor]], *, rank: int | None = None,
            iterations: int = 300, base: str | Path | Mapping[str, torch.Tensor] | None = None,
            adapter_base: str | Path | Mapping[str, torch.Tensor] | None = None, dtype: torch.dtype = torch.float32,
            device: str = "cpu", seed: int = 0, layers: Sequence[str] | None = None, progress: bool = True,
            **scheduler: Any) -> Recovery:
    """Recover the pre-fine-tuning weights shared by `variants` (checkpoint or adapter folders, state dicts).

    `rank` is the LoRA rank (end rank of the scheduler); None reads it from adapters or estimates it per
    layer from two variants. `base` (the true W_P) gives the W-Errors; `scheduler` passes start_rank,
    factor, factor_type, patience, threshold and force_end_rank_percent.
    """
    sources = [open_weights(v, adapter_base) for v in variants]
    if len(sources) < 2:
        raise AttackError("spectral detuning needs at least two fine-tuned variants of the same model")
    names = list(layers) if layers is not None else differing_layers(sources)
    if not names:
        raise AttackError("the variants have no differing weight matrices: nothing to recover")
    truth = open_weights(base) if base is not None else None
    recovery = Recovery(weights={})
    errors, baseline = [], []
    for name in tqdm(names, desc="spectral detuning", unit="layer", disable=not progress):
        weights = [s.get(name).to(device=device, dtype=dtype) for s in sources]
        ranks = [s.lora_rank(name) for s in sources]
        end_rank = rank or (max(r for r in ranks if r) if any(ranks) else estimate_rank(weights[0], weights[1]))
        result = recover_layer(weights, end_rank, iterations, seed=seed, **scheduler)
        recovery.weights[name] = result.weight.cpu()
        details: dict[str, Any] = {"rank": end_rank, "final_loss": result.loss}
        if truth is not None:
            true_weight = truth.get(name).to(device=device, dtype=dtype)
            details["log10_mse"] = log10_mse(result.weight, true_weight)
            details["mean_lora_log10_mse"] = log10_mse(torch.stack(weights).mean(0), true_weight)
            errors.append(details["log10_mse"])
            baseline.append(details["mean_lora_log10_mse"])
        recovery.layers[name] = details
        del weights
    if errors:
        recovery.w_error = sum(errors) / len(errors)
        recovery.mean_lora_w_error = sum(baseline) / len(baseline)
    return recovery


def template_path(variants: Sequence[Any], adapter_base: Any) -> str | None:
    """A checkpoint folder whose config and other weights the recovered model can borrow."""
    for item in variants:
        if isinstance(item, str | Path) and isinstance(open_weights(item, adapter_base), CheckpointWeights):
            return str(item)
    if isinstance(adapter_base, str | Path):
        return str(adapter_base)
    for item in variants:
        if isinstance(item, str | Path):
            source = open_weights(item, adapter_base)
            if isinstance(source, AdapterWeights) and isinstance(source.base, CheckpointWeights):
                return str(source.base.path)
    return None


def build_recovered(recovery: Recovery, template: str) -> tuple[Any, Any]:
    """The template model with the recovered layers loaded in its own dtype, and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(template)
    state = model.state_dict()
    missing = sorted(set(recovery.weights) - set(state))
    if missing:
        raise AttackError(f"the model in {template} has no weights named {', '.join(missing[:3])}")
    for name, weight in recovery.weights.items():
        state[name].copy_(weight.to(state[name].dtype))
    try:
        tokenizer = AutoTokenizer.from_pretrained(template)
    except (OSError, ValueError):
        tokenizer = None
    return model.eval(), tokenizer


def save_recovered(recovery: Recovery, template: str, output: str | Path) -> Path:
    model, tokenizer = build_recovered(recovery, template)
    path = Path(output)
    model.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    return path


@dataclass
class SpectralDetuningAttackOptions:
    """The options of `SpectralDetuningAttack` (`--attack-args`)."""

    variants: list[str] | None = option(None, help="LoRA fine-tuned variants: checkpoint or peft adapter folders")
    base: str | None = option(None, help="the true pre-fine-tuning model, for W-Error")
    adapter_base: str | None = option(None, help="model the adapters are merged onto (default: their config's base)")
    rank: int | None = option(None, minimum=1, help="LoRA rank (end rank); default: from the adapters, else estimated")
    iterations: int = option(300, minimum=1, help="alternating iterations per layer")
    start_rank: int = option(1, minimum=1, help="scheduler start rank")
    factor: int = option(2, minimum=1, help="scheduler rank factor")
    factor_type: str = option("mult", choices=("mult", "add"), help="mult or add")
    patience: int = option(15, minimum=1, help="epochs without improvement before the rank grows")
    threshold: float = option(0.0, minimum=0.0, help="relative improvement that counts")
    force_end_rank_percent: float = option(0.5, minimum=0.0, maximum=1.0,
                                           help="last share of iterations run at the end rank")
    dtype: str = option("float32", choices=("float32", "float64"), help="computation dtype")
    device: str | None = option(None, help="device for the computation (default: the run's device, else cpu)")
    seed: int = option(0, help="seed of the randomised SVD")
    output: str | None = option(None, help="folder where the recovered model is saved")
    evaluate: bool = option(False, help="re-run the tasks' forget metrics on the recovered model")


class SpectralDetuningAttack(ConfiguredAttack):
    name = "spectral_detuning"
    description = "Recover pre-fine-tuning weights from several LoRA fine-tunes (Spectral DeTuning, ICML 2024)."
    Options = SpectralDetuningAttackOptions

    def run(self, ctx: AttackContext) -> dict[str, Any]:
        config = self.settings(ctx.options)
        variants = config["variants"] or []
        if len(variants) < 2:
            raise AttackError("attack 'spectral_detuning' needs variants=PATH;PATH;... (at least two LoRA "
                              "fine-tunes of one model: checkpoint or adapter folders)")
        scheduler = {key: config[key] for key in ("start_rank", "factor", "factor_type", "patience", "threshold",
                                                  "force_end_rank_percent")}
        recovery = recover(variants, rank=config["rank"], iterations=config["iterations"], base=config["base"],
                           adapter_base=config["adapter_base"], dtype=getattr(torch, config["dtype"]),
                           device=config["device"] or ctx.device or "cpu", seed=config["seed"],
                           progress=ctx.progress, **scheduler)
        section: dict[str, Any] = {"n_variants": len(variants), **recovery.to_json()}
        if recovery.w_error is None:
            section["w_error_reason"] = "no base given"
        needs_model = config["output"] or config["evaluate"]
        template = template_path(variants, config["adapter_base"]) if needs_model else None
        if needs_model and template is None:
            raise AttackError("attack 'spectral_detuning': saving or evaluating the recovered model needs a "
                              "checkpoint folder among the variants or adapter_base=PATH")
        if config["output"]:
            assert template is not None
            section["output"] = str(save_recovered(recovery, template, config["output"]))
        if config["evaluate"]:
            assert template is not None
            model, _ = build_recovered(recovery, template)
            model.to(getattr(ctx.backend, "device", "cpu"))
            results = evaluate_model(ctx, model, ctx.tasks, "spectral detuning recovery")
            section["tasks"] = {}
            for task_name, task in ctx.tasks.items():
                names, declared = attack_inputs.forget_metric_names(task, ctx.results[task_name])
                model_values = attack_inputs.metric_values(ctx.results[task_name], names)
                recovered_values = attack_inputs.metric_values(results[task_name], names)
                section["tasks"][task_name] = {"forget_metrics_declared": declared, "metrics": {
                    n: {"model": model_values[n], "recovered": recovered_values[n]} for n in names}}
            del model
            free_memory()
        return section
