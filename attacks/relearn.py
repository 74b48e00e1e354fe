"""Relearning (`relearn`, Hu et al. 2024): fine-tune briefly on a slice of the forget set, re-measure.

A copy of the model (the run's model is never touched) gets a LoRA adapter (r=8, alpha=16 by default) or
is fully fine-tuned with the shared training loop on a seeded 10% slice of the forget examples; the
task's forget metrics are re-run at every checkpoint of `steps`. With the model before unlearning given
(`original_model` or `original_report`), each checkpoint also gets

    recovered fraction = (metric(step) - metric(0)) / (metric_original - metric(0))

0 = nothing came back, 1 = back to the original's value (direction-free: it works for metrics where
higher or lower means more knowledge). Without it the raw curve is reported and the fraction is null.
"""

from __future__ import annotations

import random
from typing import Any

from mu_eval.attack import AttackContext, AttackError
from mu_eval.attacks import protocol
from mu_eval.attacks.common import (
    evaluate_backend,
    evaluate_model,
    free_memory,
    load_backend,
    plain_copy,
    require_torch_model,
)
from mu_eval.attacks.options import ConfiguredAttack, Option
from mu_eval.report import ReportError, load_report
from mu_eval.task import Task, TextExample
from mu_eval.training import TrainConfig, batches, encode_examples, nll_loss, train

MIN_GAP = 1e-12


def relearn_slice(examples: list[TextExample], fraction: float, seed: int) -> list[int]:
    """Indices of a seeded random `fraction` of the examples (at least one), in their original order."""
    count = min(len(examples), max(1, round(fraction * len(examples))))
    return sorted(random.Random(seed).sample(range(len(examples)), count))


def recovered_fraction(curve: list[float | None], original: float | None,
                       start: float | None = None) -> list[float | None] | None:
    """(metric(step) - metric(0)) / (original - metric(0)) per step; None when undefined.

    `start` is metric(0), the model before relearning; by default the first value of the curve.
    """
    start = start if start is not None else (curve[0] if curve else None)
    if original is None or start is None or abs(original - start) < MIN_GAP:
        return None
    return [None if value is None else (value - start) / (original - start) for value in curve]


def attach_lora(model: Any, r: int, alpha: int, targets: str) -> Any:
    from peft import LoraConfig, get_peft_model

    target_modules: str | list[str] = targets if targets == "all-linear" else [t for t in targets.split(";") if t]
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=target_modules, bias="none",
                        task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, config)
    except (ValueError, TypeError) as error:
        raise AttackError(f"attack 'relearn': cannot attach a LoRA adapter ({targets}): {error}") from error


class RelearnAttack(ConfiguredAttack):
    name = "relearn"
    description = "Fine-tune briefly on a slice of the forget set and re-run the forget metrics (Hu et al. 2024)."
    option_spec = {
        "steps": Option([0, 10, 25, 50, 100], "ints", "checkpoints (optimizer steps) where metrics are re-run"),
        "fraction": Option(0.1, "float", "share of the forget set relearned on (seeded; at least one example)"),
        "lora": Option(True, "bool", "train a LoRA adapter (false: full fine-tuning)"),
        "lora_r": Option(8, "int", "LoRA rank"),
        "lora_alpha": Option(16, "int", "LoRA alpha"),
        "lora_targets": Option("all-linear", "str", "LoRA target modules: all-linear or names separated by ';'"),
        "lr": Option(2e-5, "float", "AdamW learning rate"),
        "batch_size": Option(4, "int", "examples per step"),
        "original_model": Option(None, "str", "model before unlearning (anchors the recovered fraction)"),
        "original_report": Option(None, "str", "report of the model before unlearning, instead of original_model"),
        "oracle_model": Option(None, "str", "retrained oracle: the same relearning curve is measured on it"),
        "seed": Option(None, "int", "seed of the slice and of training (default: the run's seed)"),
    }

    def run(self, ctx: AttackContext) -> dict[str, Any]:
        config = self.settings(ctx.options)
        model = require_torch_model(ctx, self.name)
        steps = sorted(set(config["steps"] or [0]))
        if steps[0] < 0:
            raise AttackError(f"attack 'relearn': steps must be >= 0, got {steps}")
        if not 0 < config["fraction"] <= 1:
            raise AttackError(f"attack 'relearn': fraction={config['fraction']} must be in (0, 1]")
        seed = ctx.seed if config["seed"] is None else config["seed"]
        data, skipped = self._forget_data(ctx)
        tasks = {name: ctx.tasks[name] for name in data}
        original = self._original_values(ctx, config, tasks)
        sections: dict[str, Any] = {}
        for task_name, examples in data.items():
            task = tasks[task_name]
            names, declared = protocol.forget_metric_names(task, ctx.results[task_name])
            indices = relearn_slice(examples, config["fraction"], seed)
            chosen = [examples[i] for i in indices]
            start = protocol.metric_values(ctx.results[task_name], names)
            curve, losses = self._curve(ctx, model, task_name, task, chosen, steps, names, config, seed, start)
            free_memory()
            section: dict[str, Any] = {
                "n_forget": len(examples),
                "n_relearn": len(chosen),
                "relearn_indices": indices,
                "metrics": names,
                "forget_metrics_declared": declared,
                "steps": steps,
                "curve": curve,
                "train_loss": losses,
                "original": original.get(task_name) if original else None,
            }
            fractions = {
                name: recovered_fraction(curve[name], (original or {}).get(task_name, {}).get(name), start[name])
                for name in names
            }
            section["recovered_fraction"] = fractions if original else None
            if not original:
                section["recovered_fraction_reason"] = "no original_model or original_report given"
            sections[task_name] = section
        if config["oracle_model"]:
            self._oracle_curves(ctx, config, data, tasks, steps, seed, sections)
        return {
            "mode": "lora" if config["lora"] else "full",
            "lora": {"r": config["lora_r"], "alpha": config["lora_alpha"], "targets": config["lora_targets"]}
            if config["lora"] else None,
            "lr": config["lr"],
            "batch_size": config["batch_size"],
            "fraction": config["fraction"],
            "seed": seed,
            "tasks": sections,
            "skipped": skipped,
        }

    def _forget_data(self, ctx: AttackContext) -> tuple[dict[str, list[TextExample]], dict[str, str]]:
        data, skipped = {}, {}
        for task_name, task in ctx.tasks.items():
            unlearning = protocol.unlearning_data(task, ctx.contexts[task_name])
            if unlearning is None or not unlearning.forget:
                skipped[task_name] = f"task {task_name!r} provides no forget examples (unlearning_data)"
            else:
                data[task_name] = list(unlearning.forget)
        if not data:
            raise AttackError("attack 'relearn' needs forget examples: no task of this run implements "
                              f"unlearning_data(ctx) with a forget set ({'; '.join(skipped.values())})")
        return data, skipped

    def _original_values(self, ctx: AttackContext, config: dict, tasks: dict[str, Task]) -> dict[str, dict] | None:
        if config["original_report"]:
            try:
                report = load_report(config["original_report"]).data
            except (ReportError, OSError) as error:
                raise AttackError(f"attack 'relearn': cannot read original_report: {error}") from error
            values = {}
            for task_name in tasks:
                metrics = report.get("tasks", {}).get(task_name, {}).get("metrics", {})
                names, _ = protocol.forget_metric_names(tasks[task_name], ctx.results[task_name])
                values[task_name] = {n: metrics.get(n, {}).get("value") for n in names}
            return values
        if config["original_model"]:
            backend = load_backend(config["original_model"], ctx, self.name, "original")
            results = evaluate_backend(ctx, backend, tasks)
            del backend
            free_memory()
            return {
                name: protocol.metric_values(
                    results[name], protocol.forget_metric_names(tasks[name], ctx.results[name])[0]
                )
                for name in tasks
            }
        return None

    def _curve(self, ctx: AttackContext, source: Any, task_name: str, task: Task, examples: list[TextExample],
               steps: list[int], names: list[str], config: dict, seed: int,
               start: dict[str, float | None] | None) -> tuple[dict[str, list], list[float]]:
        """Metric values at every checkpoint of a relearning run on a copy of `source`."""
        model = plain_copy(source)
        if config["lora"]:
            model = attach_lora(model, config["lora_r"], config["lora_alpha"], config["lora_targets"])
        else:
            for parameter in model.parameters():
                parameter.requires_grad_(True)
        at: dict[int, dict[str, float | None]] = {}

        def measure(step: int) -> None:
            results = evaluate_model(ctx, model, {task_name: task}, f"relearn step {step}")
            at[step] = protocol.metric_values(results[task_name], names)

        if 0 in steps:
            if start is not None:
                at[0] = start
            else:
                measure(0)
        device = next(model.parameters()).device
        encoded = encode_examples(ctx.backend.tokenizer, examples, getattr(ctx.backend, "max_length", None))
        stream = batches(encoded, config["batch_size"], seed)
        train_config = TrainConfig(steps=steps[-1], lr=config["lr"], batch_size=config["batch_size"], seed=seed,
                                   progress=ctx.progress, description=f"relearn {task_name}")
        wanted = set(steps)
        losses = train(
            model,
            lambda _step: nll_loss(model, next(stream).to(device)),
            train_config,
            on_step=lambda step, _loss: measure(step + 1) if step + 1 in wanted else None,
        )
        return {name: [at[s][name] for s in steps] for name in names}, losses

    def _oracle_curves(self, ctx: AttackContext, config: dict, data: dict[str, list[TextExample]],
                       tasks: dict[str, Task], steps: list[int], seed: int, sections: dict[str, Any]) -> None:
        backend = load_backend(config["oracle_model"], ctx, self.name, "oracle")
        try:
            for task_name, examples in data.items():
                section = sections[task_name]
                chosen = [examples[i] for i in section["relearn_indices"]]
                curve, losses = self._curve(ctx, backend.torch_model, task_name, tasks[task_name], chosen, steps,
                                            section["metrics"], config, seed, None)
                section["oracle_curve"] = curve
                section["oracle_train_loss"] = losses
        finally:
            backend.close()
            del backend
            free_memory()
