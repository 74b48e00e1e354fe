"""Relearning (`relearn`, Hu et al. 2024): fine-tune briefly on a slice of the forget set, re-measure.

A copy of the model (the run's model is never touched) gets a LoRA adapter (r=8, alpha=16 by default) or
is fully fine-tuned with the shared training loop on a seeded 10% slice of the forget examples, or, with
`text_file`, on public text loosely related to it (one run for all tasks, as the set is the same); the
task's forget metrics are re-run at every checkpoint of `steps`. With the model before unlearning given
(`original_model` or `original_report`), each checkpoint also gets

    recovered fraction = (metric(step) - metric(0)) / (metric_original - metric(0))

0 = nothing came back, 1 = back to the original's value (direction-free: it works for metrics where
higher or lower means more knowledge). Without it the raw curve is reported and the fraction is null.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mu_eval import attack_inputs
from mu_eval.attack import AttackContext, AttackError, ConfiguredAttack
from mu_eval.attacks.common import (
    evaluate_backend,
    evaluate_model,
    free_memory,
    load_backend,
    plain_copy,
    require_torch_model,
)
from mu_eval.attacks.text_corpus import TextCorpus, read_text_file
from mu_eval.options import option, split_list
from mu_eval.report import ReportError, load_report
from mu_eval.task import Task, TextExample
from mu_eval.training import TrainConfig, batches, encode_examples, nll_loss, train
from mu_eval.training_models import add_lora

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
    target_modules: str | list[str] = targets if targets == "all-linear" else split_list(targets)
    try:
        return add_lora(model, r, alpha, targets=target_modules)
    except (ValueError, TypeError) as error:
        raise AttackError(f"attack 'relearn': cannot attach a LoRA adapter ({targets}): {error}") from error


@dataclass
class RelearnAttackOptions:
    """The options of `RelearnAttack` (`--attack-args`)."""

    steps: list[int] = option(default_factory=lambda: [0, 10, 25, 50, 100], minimum=0,
                              help="checkpoints (optimizer steps) where metrics are re-run")
    fraction: float = option(0.1, minimum=0.0, maximum=1.0,
                             help="share of the forget set relearned on (seeded; at least one example)")
    lora: bool = option(True, help="train a LoRA adapter (false: full fine-tuning)")
    lora_r: int = option(8, minimum=1, help="LoRA rank")
    lora_alpha: int = option(16, minimum=1, help="LoRA alpha")
    lora_targets: str = option("all-linear", help="LoRA target modules: all-linear, or names separated by '+'")
    lr: float = option(2e-5, minimum=0.0, help="AdamW learning rate")
    batch_size: int = option(4, minimum=1, help="examples per step")
    original_model: str | None = option(None, help="model before unlearning (anchors the recovered fraction)")
    original_report: str | None = option(None, help="report of the model before unlearning, instead of original_model")
    oracle_model: str | None = option(None, help="retrained oracle: the same relearning curve is measured on it")
    seed: int | None = option(None, help="seed of the slice and of training (default: the run's seed)")
    text_file: str | None = option(None, help="relearn on this file's documents instead of a forget slice: .txt (one "
                                              "per line), or .json/.jsonl/.parquet rows with a 'text' field")


class RelearnAttack(ConfiguredAttack):
    name = "relearn"
    description = ("Fine-tune briefly on a slice of the forget set (or on related text) and re-run the forget metrics "
                   "(Hu et al. 2024).")
    Options = RelearnAttackOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # read now, so a bad file fails before the model is loaded, let alone trained
        self._corpus = read_text_file(self.config["text_file"]) if self.config["text_file"] else None

    def _text_corpus(self, path: str | None) -> TextCorpus | None:
        if path is None:
            return None
        if self._corpus is not None and self._corpus.path == str(Path(path).expanduser().resolve()):
            return self._corpus
        return read_text_file(path)

    def run(self, ctx: AttackContext) -> dict[str, Any]:
        config = self.settings(ctx.options)
        corpus = self._text_corpus(config["text_file"])
        model = require_torch_model(ctx, self.name)
        steps = sorted(set(config["steps"] or [0]))
        if steps[0] < 0:
            raise AttackError(f"attack 'relearn': steps must be >= 0, got {steps}")
        if not 0 < config["fraction"] <= 1:
            raise AttackError(f"attack 'relearn': fraction={config['fraction']} must be in (0, 1]")
        seed = ctx.seed if config["seed"] is None else config["seed"]
        data: dict[str, list[TextExample] | None]
        if corpus is None:
            forget, skipped = self._forget_data(ctx)
            chosen = {name: relearn_slice(examples, config["fraction"], seed) for name, examples in forget.items()}
            data = dict(forget)
            relearn_set: dict[str, Any] = {"source": "forget_slice", "path": None, "format": None,
                                           "n_documents": None, "sha256": None, "fraction": config["fraction"]}
        else:
            data = {name: self._forget_examples(task, ctx.contexts[name]) for name, task in ctx.tasks.items()}
            skipped, chosen = {}, {}
            relearn_set = corpus.describe()
        tasks = {name: ctx.tasks[name] for name in data}
        original = self._original_values(ctx, config, tasks)
        names = {name: attack_inputs.forget_metric_names(tasks[name], ctx.results[name]) for name in tasks}
        start = {name: attack_inputs.metric_values(ctx.results[name], names[name][0]) for name in tasks}
        runs = self._runs(data, chosen, corpus)
        curves: dict[str, dict[str, list]] = {}
        losses: dict[str, list[float]] = {}
        for label, (task_names, examples) in runs.items():
            measured, run_losses = self._curve(ctx, model, label, {n: tasks[n] for n in task_names}, examples, steps,
                                               {n: names[n][0] for n in task_names}, config, seed, start)
            free_memory()
            curves.update(measured)
            losses.update(dict.fromkeys(task_names, run_losses))
        sections: dict[str, Any] = {}
        for task_name, forget_examples in data.items():
            metric_names, declared = names[task_name]
            curve = curves[task_name]
            section: dict[str, Any] = {
                "n_forget": None if forget_examples is None else len(forget_examples),
                "n_relearn": len(corpus.documents) if corpus else len(chosen[task_name]),
                "relearn_indices": None if corpus else chosen[task_name],
                "metrics": metric_names,
                "forget_metrics_declared": declared,
                "steps": steps,
                "curve": curve,
                "train_loss": losses[task_name],
                "original": original.get(task_name) if original else None,
            }
            fractions = {
                name: recovered_fraction(curve[name], (original or {}).get(task_name, {}).get(name),
                                         start[task_name][name])
                for name in metric_names
            }
            section["recovered_fraction"] = fractions if original else None
            if not original:
                section["recovered_fraction_reason"] = "no original_model or original_report given"
            sections[task_name] = section
        if config["oracle_model"]:
            self._oracle_curves(ctx, config, runs, tasks, steps, seed, sections)
        return {
            "mode": "lora" if config["lora"] else "full",
            "lora": {"r": config["lora_r"], "alpha": config["lora_alpha"], "targets": config["lora_targets"]}
            if config["lora"] else None,
            "lr": config["lr"],
            "batch_size": config["batch_size"],
            "fraction": None if corpus else config["fraction"],
            "relearn_set": relearn_set,
            "seed": seed,
            "tasks": sections,
            "skipped": skipped,
        }

    @staticmethod
    def _runs(data: dict[str, list[TextExample] | None], chosen: dict[str, list[int]], corpus: TextCorpus | None
              ) -> dict[str, tuple[list[str], list[TextExample]]]:
        """One relearning run per task on its forget slice, or one for all tasks on the file's documents."""
        if corpus is not None:
            return {"text_file": (list(data), corpus.examples())}
        return {name: ([name], [examples[i] for i in chosen[name]]) for name, examples in data.items()
                if examples is not None}

    @staticmethod
    def _forget_examples(task: Task, task_ctx: Any) -> list[TextExample] | None:
        unlearning = attack_inputs.unlearning_data(task, task_ctx)
        return None if unlearning is None else list(unlearning.forget)

    def _forget_data(self, ctx: AttackContext) -> tuple[dict[str, list[TextExample]], dict[str, str]]:
        data, skipped = {}, {}
        for task_name, task in ctx.tasks.items():
            unlearning = attack_inputs.unlearning_data(task, ctx.contexts[task_name])
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
                names, _ = attack_inputs.forget_metric_names(tasks[task_name], ctx.results[task_name])
                values[task_name] = {n: metrics.get(n, {}).get("value") for n in names}
            return values
        if config["original_model"]:
            backend = load_backend(config["original_model"], ctx, self.name, "original")
            results = evaluate_backend(ctx, backend, tasks)
            del backend
            free_memory()
            return {
                name: attack_inputs.metric_values(
                    results[name], attack_inputs.forget_metric_names(tasks[name], ctx.results[name])[0]
                )
                for name in tasks
            }
        return None

    def _curve(self, ctx: AttackContext, source: Any, label: str, tasks: dict[str, Task], examples: list[TextExample],
               steps: list[int], names: dict[str, list[str]], config: dict, seed: int,
               start: dict[str, dict[str, float | None]] | None) -> tuple[dict[str, dict[str, list]], list[float]]:
        """Metric values of every task at every checkpoint of one relearning run on a copy of `source`."""
        model = plain_copy(source)
        if config["lora"]:
            model = attach_lora(model, config["lora_r"], config["lora_alpha"], config["lora_targets"])
        else:
            for parameter in model.parameters():
                parameter.requires_grad_(True)
        at: dict[int, dict[str, dict[str, float | None]]] = {}

        def measure(step: int) -> None:
            results = evaluate_model(ctx, model, tasks, f"relearn step {step}")
            at[step] = {name: attack_inputs.metric_values(results[name], names[name]) for name in tasks}

        if 0 in steps:
            if start is not None:
                at[0] = {name: start[name] for name in tasks}
            else:
                measure(0)
        device = next(model.parameters()).device
        encoded = encode_examples(ctx.backend.tokenizer, examples, getattr(ctx.backend, "max_length", None))
        stream = batches(encoded, config["batch_size"], seed)
        train_config = TrainConfig(steps=steps[-1], lr=config["lr"], batch_size=config["batch_size"], seed=seed,
                                   progress=ctx.progress, description=f"relearn {label}")
        wanted = set(steps)
        losses = train(
            model,
            lambda _step: nll_loss(model, next(stream).to(device)),
            train_config,
            on_step=lambda step, _loss: measure(step + 1) if step + 1 in wanted else None,
        )
        curves = {task: {name: [at[s][task][name] for s in steps] for name in names[task]} for task in tasks}
        return curves, losses

    def _oracle_curves(self, ctx: AttackContext, config: dict, runs: dict[str, tuple[list[str], list[TextExample]]],
                       tasks: dict[str, Task], steps: list[int], seed: int, sections: dict[str, Any]) -> None:
        backend = load_backend(config["oracle_model"], ctx, self.name, "oracle")
        try:
            for label, (task_names, examples) in runs.items():
                curves, losses = self._curve(ctx, backend.torch_model, label, {n: tasks[n] for n in task_names},
                                             examples, steps, {n: sections[n]["metrics"] for n in task_names},
                                             config, seed, None)
                for name in task_names:
                    sections[name]["oracle_curve"] = curves[name]
                    sections[name]["oracle_train_loss"] = losses
        finally:
            backend.close()
            del backend
            free_memory()
