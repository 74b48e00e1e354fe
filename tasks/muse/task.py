"""The MUSE tasks: VerbMem, KnowMem (forget and retain) and PrivLeak over one corpus (docs/tasks-muse-wmdp-rwku.md).

Each metric follows the original `muse_bench` code: greedy generation, ROUGE-L F1 without stemming,
Min-40% on every token after BOS, and PrivLeak on this project's AUC orientation (forget positive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from mu_eval.metrics.mia import auc, min_k_score, privleak
from mu_eval.metrics.rouge import rougeL_f1
from mu_eval.options import option
from mu_eval.requests import Generate, GenerateResult, Request, Result, Score, ScoreResult
from mu_eval.task import MetricValue, Task, TaskContext, TaskOptionError, TaskResult, TextExample, UnlearningData

from . import data
from .folds import load_folds, parse_fold_config
from .reference import MUSE_RETRAIN_AUC, published_retrain_auc, to_muse_orientation

PARTS: tuple[str, ...] = ("verbmem", "knowmem", "privleak")
FORGET_KEY, HOLDOUT_KEY = "privleak_forget_mink40", "privleak_holdout_mink40"


@dataclass
class MuseOptions:
    """The options of the MUSE tasks (`--task-args`)."""

    parts: list[str] = option(default_factory=lambda: list(PARTS), choices=PARTS,
                              help="which probes to run, joined by '+'")
    published_reference: bool = option(True, help="without a --reference report, PrivLeak compares with MUSE's "
                                                   "published retrained-model AUC")
    forget_folds: str | None = option(None, choices=data.FOLD_CONFIGS,
                                      help="scal or sust: the forget sets a --protocol run unlearns (News only)")
    scoring: str = option("reference", choices=("reference", "offsets"),
                          help="which tokens of a PrivLeak text are scored: reference (MUSE: every token of "
                               "tokenizer(text) but the first) or offsets (mu-eval's)")


def mean_metric(values: list[float], higher_is_better: bool | None, variant: str) -> MetricValue:
    """Mean x 100 with its standard error (sample standard deviation / sqrt n)."""
    n = len(values)
    if n == 0:
        return MetricValue.missing("no items", higher_is_better=higher_is_better)
    mean = sum(values) / n
    stderr = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else None
    return MetricValue(100 * mean, n, higher_is_better, None if stderr is None else 100 * stderr, variant=variant)


#: `scoring` option -> the Score boundary of PrivLeak's texts. "reference": MUSE scores every token of
#: tokenizer(text) but the first (the BOS, when the tokenizer adds one); "offsets": every token holding a
#: character of the text, after a BOS (or EOS) placed before it when the tokenizer adds none.
SCORING = {"reference": "prefix", "offsets": "offsets"}


class MuseTask(Task):
    """One MUSE corpus. Options: `parts` (verbmem+knowmem+privleak), `published_reference` (default true:
    without a `--reference` report, PrivLeak compares with MUSE's published retrained-model AUC),
    `forget_folds` (scal or sust: the forget sets a `--protocol` run unlearns, News only), `scoring`
    (reference | offsets: which tokens of a PrivLeak text are scored; they differ for tokenizers that add
    no BOS, where MUSE never scores the first token)."""

    corpus: str = ""

    Options: ClassVar[type | None] = MuseOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if not self.settings.parts:
            raise TaskOptionError(f"task {self.name!r} option parts: name at least one of {'+'.join(PARTS)}")
        self.parts = tuple(dict.fromkeys(self.settings.parts))
        self.use_published = self.settings.published_reference
        self.fold_config = parse_fold_config(self.settings.forget_folds, self.corpus)
        self.scoring = self.settings.scoring
        if self.fold_config is not None:
            self.datasets = (*type(self).datasets, *data.fold_specs(self.corpus, self.fold_config))
        self.layout: list[tuple[str, int]] = []
        self.verbmem_rows: list[dict] = []
        self.knowmem_rows: dict[str, list[dict]] = {}

    def config(self) -> dict[str, Any]:
        config = super().config()
        config["scoring"] = self.scoring
        return config

    # -- requests ------------------------------------------------------------------------------------------
    def build_requests(self, ctx: TaskContext) -> list[Request]:
        requests: list[Request] = []
        self.layout, self.verbmem_rows, self.knowmem_rows = [], [], {}
        if "verbmem" in self.parts:
            self.verbmem_rows = ctx.limited(ctx.load(data.verbmem_spec(self.corpus)))
            requests += [Generate(r["prompt"], data.VERBMEM_MAX_NEW_TOKENS) for r in self.verbmem_rows]
            self.layout.append(("verbmem", len(self.verbmem_rows)))
        if "knowmem" in self.parts:
            for family in ("forget", "retain"):
                icl = ctx.load(data.knowmem_spec(self.corpus, f"{family}_qa_icl"))
                rows = ctx.limited(ctx.load(data.knowmem_spec(self.corpus, f"{family}_qa")))
                self.knowmem_rows[family] = rows
                requests += [
                    Generate(data.knowmem_prompt(icl, r["question"]), data.KNOWMEM_MAX_NEW_TOKENS, data.KNOWMEM_STOPS)
                    for r in rows
                ]
                self.layout.append((f"knowmem_{family}", len(rows)))
        if "privleak" in self.parts:
            for split in ("forget", "holdout"):
                rows = ctx.limited(ctx.load(data.privleak_spec(self.corpus, split)))
                requests += [Score("", r["text"], boundary=SCORING[self.scoring]) for r in rows]
                self.layout.append((f"privleak_{split}", len(rows)))
        return requests

    def unlearning_data(self, ctx: TaskContext) -> UnlearningData:
        """MUSE's `raw` documents: forget, `retain1` (the split MUSE gives methods as retain data) and holdout."""

        def documents(split: str) -> list[TextExample]:
            return [TextExample("", row["text"]) for row in ctx.load(data.raw_spec(self.corpus, split))]

        return UnlearningData(forget=documents("forget"), retain=documents("retain1"), holdout=documents("holdout"))

    def unlearning_folds(self, ctx: TaskContext) -> list[list[TextExample]]:
        """The protocol hook: MUSE's `scal` (nested) or `sust` (disjoint) forget_1..4 as disjoint folds."""
        if self.fold_config is None:
            raise NotImplementedError(f"{self.name} has folds only with forget_folds=scal or sust")
        folds = load_folds(ctx.load, self.corpus, self.fold_config)
        return [[TextExample("", text) for text in fold] for fold in folds]

    # -- results -------------------------------------------------------------------------------------------
    def process_results(self, results: list[Result], ctx: TaskContext) -> TaskResult:
        sections: dict[str, list[Result]] = {}
        cursor = 0
        for name, count in self.layout:
            sections[name] = results[cursor : cursor + count]
            cursor += count
        out = TaskResult(metrics={}, info={"corpus": self.corpus, "parts": list(self.parts), "scoring": self.scoring})
        if "verbmem" in sections:
            self._verbmem(sections["verbmem"], ctx, out)
        for family in ("forget", "retain"):
            if f"knowmem_{family}" in sections:
                self._knowmem(family, sections[f"knowmem_{family}"], out)
        if "privleak_forget" in sections:
            self._privleak(sections["privleak_forget"], sections["privleak_holdout"], ctx, out)
        return out

    def _verbmem(self, answers: list[Result], ctx: TaskContext, out: TaskResult) -> None:
        if ctx.truncate_tokens is None:
            out.metrics["verbmem_f"] = MetricValue.missing(
                "the backend cannot tokenize, so the gold cannot be cut to 128 tokens", higher_is_better=False
            )
            return
        scores = []
        for row, answer in zip(self.verbmem_rows, answers):
            assert isinstance(answer, GenerateResult)
            gold = ctx.truncate_tokens(row["gt"], data.VERBMEM_MAX_NEW_TOKENS)
            scores.append(rougeL_f1(gold, answer.text, stemmer=False))
            out.samples.append({"part": "verbmem", "gold": gold, "prediction": answer.text, "rougeL_f1": scores[-1]})
        variant = "ROUGE-L F1 x100, rouge_score, no stemmer, gt cut to 128 tokens"
        out.metrics["verbmem_f"] = mean_metric(scores, False, variant)
        out.items["verbmem_f"] = scores

    def _knowmem(self, family: str, answers: list[Result], out: TaskResult) -> None:
        scores = []
        for row, answer in zip(self.knowmem_rows[family], answers):
            assert isinstance(answer, GenerateResult)
            prediction = data.cut_knowmem_output(answer.text)
            scores.append(rougeL_f1(row["answer"], prediction, stemmer=False))
            out.samples.append({"part": f"knowmem_{family}", "question": row["question"], "gold": row["answer"],
                                "prediction": prediction, "rougeL_f1": scores[-1]})
        key = "knowmem_f" if family == "forget" else "knowmem_r"
        out.metrics[key] = mean_metric(scores, family == "retain", "ROUGE-L F1 x100, rouge_score, no stemmer, 10-shot")
        out.items[key] = scores

    def _privleak(self, forget: list[Result], holdout: list[Result], ctx: TaskContext, out: TaskResult) -> None:
        forget_scores = [self._min_k(r) for r in forget]
        holdout_scores = [self._min_k(r) for r in holdout]
        out.items[FORGET_KEY], out.items[HOLDOUT_KEY] = forget_scores, holdout_scores
        dropped = sum(1 for s in forget_scores + holdout_scores if not math.isfinite(s))
        n = len(forget_scores) + len(holdout_scores)
        value = auc(forget_scores, holdout_scores)
        variant = "Min-40% (floor(0.4 T) lowest token log-probs after BOS), forget positive"
        out.metrics["privleak_auc"] = MetricValue(value, n - dropped, None, variant=variant)
        reference, source = self._reference_auc(ctx)
        out.info["privleak"] = {"auc": value, "auc_muse_orientation": to_muse_orientation(value),
                                "reference_auc": reference, "reference": source, "n_dropped_nan": dropped}
        if reference is None:
            out.metrics["privleak"] = MetricValue.missing(source, n=n - dropped)
            return
        leak = privleak(value, reference)
        if leak is None:
            out.metrics["privleak"] = MetricValue.missing(
                f"PrivLeak undefined for AUC {value} against reference AUC {reference} ({source})", n=n - dropped
            )
            return
        variant = f"(AUC_ref - AUC) / (1 - AUC_ref) x 100; reference: {source}"
        out.metrics["privleak"] = MetricValue(leak, n - dropped, None, variant=variant)

    @staticmethod
    def _min_k(result: Result) -> float:
        assert isinstance(result, ScoreResult)
        return min_k_score(result, k=data.PRIVLEAK_K, include_eos=False, guard=False)

    def _reference_auc(self, ctx: TaskContext) -> tuple[float | None, str]:
        """The retrained model's AUC: from the `--reference` report when it has this task, else published."""
        items = ctx.reference_items(self.name)
        note = ""
        if items and FORGET_KEY in items and HOLDOUT_KEY in items:
            scores = [[math.nan if v is None else v for v in items[key]] for key in (FORGET_KEY, HOLDOUT_KEY)]
            return auc(scores[0], scores[1]), f"reference report ({len(scores[0])} + {len(scores[1])} texts)"
        if ctx.reference is not None:
            note = f"the reference report has no {self.name} PrivLeak scores; "
        if not self.use_published:
            return None, note + "no reference report with this task's PrivLeak scores (--reference)"
        muse = MUSE_RETRAIN_AUC[self.corpus]
        return published_retrain_auc(self.corpus), note + (
            f"published MUSE retrained-model AUC {muse} (MUSE orientation) = "
            f"{published_retrain_auc(self.corpus):.4f} (ours), on all 100 + 100 texts"
        )


class MuseNews(MuseTask):
    name = "muse_news"
    corpus = "news"
    datasets = data.all_specs("news")
    description = "MUSE-News (BBC): VerbMem, KnowMem forget/retain, PrivLeak"


class MuseBooks(MuseTask):
    name = "muse_books"
    corpus = "books"
    datasets = data.all_specs("books")
    description = "MUSE-Books (Harry Potter): VerbMem, KnowMem forget/retain, PrivLeak"
