"""MU-Bench generative tasks: SAMSum dialogue summarisation and Celeb Profile biographies, scored by ROUGE.

Upstream runs HF `evaluate`'s rouge with the stemmer on, after joining each text's sentences with newlines
(nltk `sent_tokenize`), and reads the `rougeL` key. Newlines only matter to ROUGE-Lsum, so both are
reported from `rouge_score` directly: `rougeL` (what upstream's number is) and `rougeLsum` on the
newline-joined sentences; both F1, averaged over items (evaluate's bootstrap aggregate is not reproduced).
All values stay in [0, 1]; `overall` = (R_test + 1 - R_forget) / 2 with R = ROUGE-L (upstream adds ROUGE x 100
to 1 - ROUGE x 100). Generation is greedy. A seq2seq checkpoint is answered by `--backend classifier`, a
causal LM by `--backend hf`; `prompt` sets the input template.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from mu_eval.data import DatasetSpec
from mu_eval.metrics.rouge import rouge_scores
from mu_eval.options import option
from mu_eval.requests import Generate, GenerateResult
from mu_eval.task import MetricValue, Task, TaskContext, TaskResult, TextExample, UnlearningData

from .deletion import load_forget_indices
from .options import DeletionOptions

SETS = ("test", "forget", "retain")


@lru_cache(maxsize=1)
def sentence_splitter() -> tuple[Any, str]:
    """nltk's `sent_tokenize` (upstream's) when punkt_tab is installed, else an untrained Punkt splitter."""
    import nltk
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    try:
        nltk.sent_tokenize("Probe. Text.")
        return nltk.sent_tokenize, "nltk.sent_tokenize (punkt_tab)"
    except LookupError:
        return PunktSentenceTokenizer().tokenize, "untrained nltk Punkt splitter (punkt_tab not installed)"


def newline_sentences(text: str) -> str:
    split, _ = sentence_splitter()
    return "\n".join(split(text.strip()))


def rouge_pair(gold: str, prediction: str) -> tuple[float, float]:
    """(ROUGE-L F1, ROUGE-Lsum F1), stemmer on, texts stripped and sentence-split onto lines."""
    scores = rouge_scores(newline_sentences(gold), newline_sentences(prediction), ("rougeL", "rougeLsum"), True)
    return scores["rougeL"].fmeasure, scores["rougeLsum"].fmeasure


@dataclass
class GenerationOptions(DeletionOptions):
    """The options of the MU-Bench generation tasks (`--task-args`)."""

    max_new_tokens: int = option(128, minimum=1, help="tokens generated per answer")
    prompt: str | None = option(None, help="str.format template over the row's fields (default: the task's)")


class MUBenchGeneration(Task):
    """A generative MU-Bench task. Options: ratio, df_file / df_dir, retain_eval_size (default |D_f|, a
    seeded sample), max_new_tokens (default 128), prompt (a str.format template over the row's fields)."""

    key: str = ""
    spec_id: str = ""
    source_field: str = ""
    target_fields: tuple[str, ...] = ()
    default_prompt: str = ""

    Options: ClassVar[type | None] = GenerationOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        settings = self.settings
        self.ratio = settings.ratio
        self.retain_eval_size = settings.retain_eval_size
        self.max_new_tokens = settings.max_new_tokens
        self.prompt = settings.prompt if settings.prompt is not None else self.default_prompt
        self._rows: dict[str, list[dict]] | None = None
        self.forget_source = ""

    @classmethod
    def spec(cls, split: str) -> DatasetSpec:
        return DatasetSpec(cls.spec_id, None, split, local_names=(f"{cls.key}/{split}", f"mubench/{cls.key}/{split}"))

    def rows(self, ctx: TaskContext) -> dict[str, list[dict]]:
        if self._rows is None:
            self._rows = {split: ctx.load(self.spec(split)) for split in ("train", "test")}
        return self._rows

    def target(self, row: dict) -> str:
        for name in self.target_fields:
            if row.get(name) is not None:
                return str(row[name])
        raise KeyError(f"{self.name}: a row has none of the fields {', '.join(self.target_fields)}")

    def prompt_of(self, row: dict) -> str:
        return self.prompt.replace("\\n", "\n").format(**row)

    def split_indices(self, ctx: TaskContext) -> dict[str, list[int]]:
        rows = self.rows(ctx)
        forget, self.forget_source = load_forget_indices(self.key, self.ratio, self.option_values(), len(rows["train"]))
        chosen = set(forget)
        retain = [i for i in range(len(rows["train"])) if i not in chosen]
        return {"test": list(range(len(rows["test"]))), "forget": forget, "retain": retain}

    def unlearning_data(self, ctx: TaskContext) -> UnlearningData:
        """(prompt, reference) pairs of D_f and D_r, for the LLM methods on a causal model."""
        rows = self.rows(ctx)["train"]
        indices = self.split_indices(ctx)
        pairs = {name: [TextExample(self.prompt_of(rows[i]), self.target(rows[i])) for i in indices[name]]
                 for name in ("forget", "retain")}
        return UnlearningData(forget=pairs["forget"], retain=pairs["retain"])

    def build_requests(self, ctx: TaskContext) -> list[Generate]:
        rows = self.rows(ctx)
        indices = self.split_indices(ctx)
        size = self.retain_eval_size if self.retain_eval_size is not None else len(indices["forget"])
        if size < len(indices["retain"]):
            indices["retain"] = sorted(random.Random(ctx.seed).sample(indices["retain"], size))
        self.indices = {name: ctx.limited(values) for name, values in indices.items()}
        self.golds: dict[str, list[str]] = {}
        requests = []
        for name in SETS:
            split = rows["test"] if name == "test" else rows["train"]
            chosen = [split[i] for i in self.indices[name]]
            self.golds[name] = [self.target(r) for r in chosen]
            requests += [Generate(self.prompt_of(r), self.max_new_tokens) for r in chosen]
        return requests

    def process_results(self, results: list[GenerateResult], ctx: TaskContext) -> TaskResult:
        metrics: dict[str, MetricValue] = {}
        items: dict[str, list] = {}
        samples = []
        cursor = 0
        _, splitter = sentence_splitter()
        means = {}
        for name in SETS:
            golds = self.golds[name]
            answers = [r.text for r in results[cursor : cursor + len(golds)]]
            cursor += len(golds)
            pairs = [rouge_pair(g, a) for g, a in zip(golds, answers)]
            items[f"{name}_rougeL"] = [p[0] for p in pairs]
            items[f"{name}_rougeLsum"] = [p[1] for p in pairs]
            items[f"{name}_index"] = list(self.indices[name])
            for column, position in (("rougeL", 0), ("rougeLsum", 1)):
                value = float(np.mean([p[position] for p in pairs])) if pairs else None
                means[(name, column)] = value
                variant = f"rouge_score {column} F1, stemmer on, sentences newline-joined ({splitter})"
                metrics[f"{name}_{column}"] = MetricValue(value, len(pairs), name != "forget", variant=variant)
            samples += [{"set": name, "index": i, "gold": g, "generation": a}
                        for i, g, a in zip(self.indices[name], golds, answers)]
        test, forget = means[("test", "rougeL")], means[("forget", "rougeL")]
        metrics["overall"] = (
            MetricValue((test + 1 - forget) / 2, len(self.golds["test"]), True, variant="(R_test + 1 - R_forget) / 2")
            if test is not None and forget is not None else MetricValue.missing("needs test and forget items")
        )
        info = {"forget_file": self.forget_source, "ratio": self.ratio, "sentence_splitter": splitter,
                "prompt": self.prompt, "max_new_tokens": self.max_new_tokens}
        return TaskResult(metrics=metrics, items=items, samples=samples, info=info)


class SAMSum(MUBenchGeneration):
    name = "mubench_samsum"
    description = "MU-Bench SAMSum dialogue summarisation: ROUGE-L on D_test/D_f/D_r (greedy)"
    key = "samsum"
    spec_id = "samsum"
    target_fields = ("summary",)
    default_prompt = "summarize: {dialogue}"
    datasets = (DatasetSpec("samsum", None, "train"), DatasetSpec("samsum", None, "test"))


class CelebProfile(MUBenchGeneration):
    """Celeb Profile (`bioceleb` deletion file). No public loader upstream: local rows {name, profile}."""

    name = "mubench_celeb_profile"
    description = "MU-Bench Celeb Profile biography generation: ROUGE-L on D_test/D_f/D_r (greedy)"
    key = "bioceleb"
    spec_id = "celeb_profile"
    target_fields = ("profile", "biography", "text")
    default_prompt = "Write a short profile of {name}."
    datasets = (DatasetSpec("celeb_profile", None, "train"), DatasetSpec("celeb_profile", None, "test"))


GENERATION_TASKS = (SAMSum, CelebProfile)
