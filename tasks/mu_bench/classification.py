"""MU-Bench classification tasks: accuracy on D_test, D_f and D_r, MIA-Efficacy, knowledge gap, ZRF and the
model-selection score, for any modality the `classifier` backend reads.

D_f is the first floor((ratio / 10) * N) rows of the dataset's deletion file, D_r the rest of the training
split (optionally a seeded sample of `retain_eval_size` rows for evaluation). Per-example correctness,
true-class confidence, margins and row indices are kept as report items, so reports can feed KLoM or
serve as another run's reference.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mu_eval.data import DatasetSpec
from mu_eval.options import option
from mu_eval.requests import RANDOM_INIT, Classify, ClassifyResult, classify_request
from mu_eval.task import MetricValue, Task, TaskContext, TaskResult
from mu_eval.task_data import ClassifierExample, ClassifierUnlearningData

from . import metrics
from .catalog import CATALOG, ClassificationDataset
from .deletion import load_forget_indices
from .options import DeletionOptions

SETS = ("test", "forget", "retain")


@dataclass
class ClassificationOptions(DeletionOptions):
    """The options of the MU-Bench classification tasks (`--task-args`)."""

    orig_test_acc: float | None = option(None, minimum=0.0, maximum=1.0,
                                         help="the original model's D_test accuracy (else read from --reference)")
    zrf: bool = option(True, help="compute ZRF against a randomly initialised model")
    zrf_seed: int = option(0, help="seed of the randomly initialised model")
    kg_draws: int = option(metrics.KNOWLEDGE_GAP_DRAWS, minimum=1, help="draws of the knowledge-gap estimate")
    ood: bool = option(False, help="IMDB: also the out-of-distribution (rotten_tomatoes) accuracy")
    tsv_dir: str | None = option(None, help="DDI: folder of MU-Bench's raw train.tsv / test.tsv")


class MUBenchClassification(Task):
    """One MU-Bench classification benchmark (subclasses set `dataset`).

    Options (`--task-args`): ratio (deletion %, default 10), df_file / df_dir (deletion index file or
    folder), retain_eval_size (seeded D_r sample for evaluation; default all of D_r), orig_test_acc (the
    original model's D_test accuracy; else read from --reference), zrf (default true), zrf_seed, kg_draws,
    ood (IMDB: also rotten_tomatoes accuracy), tsv_dir (DDI: MU-Bench's raw train.tsv / test.tsv).
    """

    dataset: ClassificationDataset
    Options: ClassVar[type | None] = ClassificationOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        settings = self.settings
        self.ratio = settings.ratio
        self.retain_eval_size = settings.retain_eval_size
        self.orig_test_acc = settings.orig_test_acc
        self.use_zrf = settings.zrf
        self.zrf_seed = settings.zrf_seed
        self.kg_draws = settings.kg_draws
        self.use_ood = settings.ood
        self._rows: dict[str, list[dict]] | None = None
        self.forget_source = ""

    # -- data ----------------------------------------------------------------------------------------------
    def rows(self, ctx: TaskContext) -> dict[str, list[dict]]:
        """Train and test rows, loaded once per run (unlearning and evaluation both need them)."""
        if self._rows is None:
            tsv_dir = self.settings.tsv_dir
            if tsv_dir and self.dataset.tsv_columns:
                read = lambda split: self.dataset.read_tsv(str(tsv_dir), split)  # noqa: E731
            else:
                read = lambda split: ctx.load(self.dataset.spec(split))  # noqa: E731
            self._rows = {"train": read(self.dataset.train_split), "test": read(self.dataset.test_split)}
            if self.use_ood and self.dataset.ood:
                hub_id, splits = self.dataset.ood
                self._rows["ood"] = [r for split in splits for r in ctx.load(DatasetSpec(hub_id, None, split))]
        return self._rows

    def split_indices(self, ctx: TaskContext) -> dict[str, list[int]]:
        """Row indices of each set: test rows of the test split; forget and retain rows of the train split."""
        rows = self.rows(ctx)
        train_size = len(rows["train"])
        forget, self.forget_source = load_forget_indices(self.dataset.key, self.ratio, self.option_values(),
                                                         train_size)
        chosen = set(forget)
        retain = [i for i in range(train_size) if i not in chosen]
        indices = {"test": list(range(len(rows["test"]))), "forget": forget, "retain": retain}
        if "ood" in rows:
            indices["ood"] = list(range(len(rows["ood"])))
        return indices

    def evaluation_indices(self, ctx: TaskContext) -> dict[str, list[int]]:
        indices = self.split_indices(ctx)
        if self.retain_eval_size is not None and self.retain_eval_size < len(indices["retain"]):
            sample = random.Random(ctx.seed).sample(indices["retain"], self.retain_eval_size)
            indices["retain"] = sorted(sample)
        return {name: ctx.limited(values) for name, values in indices.items()}

    def sets(self) -> tuple[str, ...]:
        """The evaluated sets: D_test, D_f, D_r, and the OOD set when `ood=true` and the dataset has one."""
        return SETS + (("ood",) if self.use_ood and self.dataset.ood else ())

    def example(self, row: dict) -> tuple[Any, int]:
        return self.dataset.raw_input(row), self.dataset.label(row)

    def unlearning_data(self, ctx: TaskContext) -> ClassifierUnlearningData:
        """All of D_f and D_r as labelled examples (not limited: `--limit` only shortens evaluation)."""
        rows = self.rows(ctx)["train"]
        indices = self.split_indices(ctx)
        modality = self.dataset.modality

        def examples(which: str) -> list[ClassifierExample]:
            return [ClassifierExample.from_raw(modality, *self.example(rows[i])) for i in indices[which]]

        return ClassifierUnlearningData(forget=examples("forget"), retain=examples("retain"))

    # -- requests ------------------------------------------------------------------------------------------
    def build_requests(self, ctx: TaskContext) -> list[Classify]:
        rows = self.rows(ctx)
        self.indices = self.evaluation_indices(ctx)
        self.labels: dict[str, list[int]] = {}
        requests: list[Classify] = []
        self.layout: list[tuple[str, int]] = []  # (set, count) in request order
        for name in self.sets():
            split = rows[name] if name in ("test", "ood") else rows["train"]
            labels = []
            for index in self.indices[name]:
                raw, label = self.example(split[index])
                labels.append(label)
                requests.append(classify_request(ctx.inputs, self.dataset.modality, raw))
            self.labels[name] = labels
            self.layout.append((name, len(labels)))
        if self.use_zrf:
            variant = f"{RANDOM_INIT}:{self.zrf_seed}"
            forget = requests[self.layout[0][1] : self.layout[0][1] + self.layout[1][1]]
            requests += [Classify(r.modality, r.digest, variant) for r in forget]
            self.layout.append(("forget_random", len(forget)))
        return requests

    # -- metrics -------------------------------------------------------------------------------------------
    def process_results(self, results: list[ClassifyResult], ctx: TaskContext) -> TaskResult:
        by_set: dict[str, list[ClassifyResult]] = {}
        cursor = 0
        for name, count in self.layout:
            by_set[name] = results[cursor : cursor + count]
            cursor += count
        for name in self.sets():
            self._check_classes(by_set[name])
        items: dict[str, list] = {}
        values: dict[str, dict[str, list]] = {}
        for name in self.sets():
            answers, labels = by_set[name], self.labels[name]
            probs = [a.probabilities() for a in answers]
            values[name] = {
                "correct": [int(a.predicted == y) for a, y in zip(answers, labels)],
                "confidence": [p[y] for p, y in zip(probs, labels)],
                "margin": [a.margin(y) for a, y in zip(answers, labels)],
                "prediction": [a.predicted for a in answers],
                "label": labels,
                "index": self.indices[name],
            }
            for key, column in values[name].items():
                items[f"{name}_{key}"] = list(column)
        result_metrics = self._metrics(values, by_set, items, ctx)
        samples = [
            {"set": name, "index": i, "label": y, "prediction": p, "confidence": c}
            for name in self.sets()
            for i, y, p, c in zip(values[name]["index"], values[name]["label"], values[name]["prediction"],
                                  values[name]["confidence"])
        ]
        info = {"forget_file": self.forget_source, "ratio": self.ratio, "num_classes": self.dataset.num_classes,
                "random_accuracy": self.dataset.random_accuracy, "upstream_random": self.dataset.upstream_random}
        return TaskResult(metrics=result_metrics, items=items, samples=samples, info=info)

    def _check_classes(self, answers: list[ClassifyResult]) -> None:
        for answer in answers[:1]:
            if len(answer.logits) != self.dataset.num_classes:
                from mu_eval.backend import BackendError

                raise BackendError(f"task {self.name} has {self.dataset.num_classes} classes but the model "
                                   f"outputs {len(answer.logits)} logits")

    def original_test_accuracy(self, ctx: TaskContext) -> float | None:
        if self.orig_test_acc is not None:
            return self.orig_test_acc
        task = (ctx.reference or {}).get("tasks", {}).get(self.name)
        metric = task and task.get("metrics", {}).get("test_accuracy")
        return metric["value"] if metric and metric.get("value") is not None else None

    def _metrics(self, values: dict, by_set: dict, items: dict, ctx: TaskContext) -> dict[str, MetricValue]:
        n = {name: len(values[name]["correct"]) for name in self.sets()}
        acc = {name: metrics.accuracy(values[name]["correct"]) for name in self.sets()}
        out = {f"{name}_accuracy": MetricValue(acc[name], n[name], name != "forget") for name in self.sets()}
        mia, shadow = metrics.mia_efficacy(values["retain"]["confidence"], values["test"]["confidence"],
                                           values["forget"]["confidence"], ctx.seed)
        variant = f"SVC(C=3, rbf, gamma=auto) on true-class confidence; seeded D_r sample {shadow} (label 1)"
        out["mia_efficacy"] = MetricValue(mia, n["forget"], True, variant=variant + " vs D_test (label 0)")
        gap = metrics.knowledge_gap(values["forget"]["correct"], values["retain"]["correct"], ctx.seed, self.kg_draws)
        out["knowledge_gap"] = MetricValue(gap, n["forget"], None, variant=(
            f"mean ROC-AUC over {self.kg_draws} seeded draws, correctness scores, D_f positive"))
        if math.isnan(gap):
            out["knowledge_gap"] = MetricValue.missing("needs a D_r evaluation set at least as large as D_f")
        if self.use_zrf:
            model_probs = [a.probabilities() for a in by_set["forget"]]
            random_probs = [a.probabilities() for a in by_set["forget_random"]]
            items["forget_zrf_js"] = list(metrics.js_divergence(np.asarray(model_probs), np.asarray(random_probs)))
            variant = f"1 - mean JS divergence (natural log) to random-init seed {self.zrf_seed}"
            out["zrf"] = MetricValue(metrics.zrf(model_probs, random_probs), n["forget"], True, variant=variant)
        original = self.original_test_accuracy(ctx)
        dt_term, df_term, hm = metrics.selection_terms(acc["test"], original, acc["forget"],
                                                       self.dataset.random_accuracy)
        missing = "needs the original model's test accuracy: --reference its report, or orig_test_acc="
        out["selection_df_term"] = MetricValue(df_term, n["forget"], None,
                                               variant=f"|Acc_Df - 1/C|, 1/C = {self.dataset.random_accuracy:.4g}")
        for key, value in (("selection_dt_term", dt_term), ("selection_hm", hm)):
            out[key] = MetricValue(value, n["test"], True) if value is not None else MetricValue.missing(missing)
        total = metrics.overall(hm, None if math.isnan(gap) else gap)
        out["overall"] = (MetricValue(total, n["test"], True, variant="MU-Bench unlearn_overall: HM/2, or (HM+KG)/3")
                          if total is not None else MetricValue.missing(missing))
        return out


def make_task(key: str) -> type[MUBenchClassification]:
    """The task class of one catalogue entry, named `mubench_<key>`."""
    dataset = CATALOG[key]
    return type(f"MUBench_{key}", (MUBenchClassification,), {
        "name": f"mubench_{key}", "dataset": dataset,
        "datasets": (dataset.spec(dataset.train_split), dataset.spec(dataset.test_split)),
        "description": f"MU-Bench {dataset.description}: accuracy on D_test/D_f/D_r, MIA-Eff, KG, ZRF",
    })


CLASSIFICATION_TASKS = tuple(make_task(key) for key in CATALOG)
