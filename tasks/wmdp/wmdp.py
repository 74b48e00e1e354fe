"""WMDP: zero-shot four-option questions on hazardous knowledge, one `Choose` each (docs/tasks-muse-wmdp-rwku.md).

`wmdp` evaluates the three subsets in one task and reports each one plus the size-weighted group
accuracy (lm-eval's `wmdp` group), which equals the accuracy over the pooled questions.

For methods that train, `wmdp_bio`, `wmdp_cyber` and `wmdp` provide WMDP's unlearning corpora (corpora.py):
RMU's forget corpus of the topic (both, pooled, for `wmdp`) and WikiText as retain text.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mu_eval.data import DatasetSpec
from mu_eval.requests import Request, Result
from mu_eval.task import MetricValue, Task, TaskContext, TaskResult, UnlearningData

from . import multiple_choice as mc
from .corpora import CorpusOptions, corpus_choice, unlearning_corpora

HF_ID = "cais/wmdp"
#: task name -> (hub config, topic named in the description)
SUBSETS: dict[str, tuple[str, str]] = {
    "wmdp_bio": ("wmdp-bio", "biology"),
    "wmdp_chem": ("wmdp-chem", "chemistry"),
    "wmdp_cyber": ("wmdp-cyber", "cybersecurity"),
}
VARIANT = "lm-eval wmdp prompt, zero-shot, argmax over ' A'..' D' log-likelihoods"


def wmdp_spec(subset: str) -> DatasetSpec:
    return DatasetSpec(HF_ID, SUBSETS[subset][0], "test", required_fields=("question", "choices", "answer"))


def wmdp_context(topic: str, question: str, choices: list[str]) -> str:
    return mc.header(topic) + mc.question_text(question, choices)


class WmdpTask(Task):
    """One or more WMDP subsets; with several, `acc` is the size-weighted mean and `acc_<subset>` each one.

    Options for unlearning: `forget_corpora`, `retain_corpora` (corpus names joined by "+", or none) and
    `corpus_min_len` (keep texts longer than this many characters).
    """

    subsets: tuple[str, ...] = ()
    #: RMU's forget corpora for this task's topics (WMDP publishes none for chemistry)
    forget_corpora: tuple[str, ...] = ()

    Options: ClassVar[type | None] = CorpusOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.corpora = corpus_choice(self.settings, self.forget_corpora, options)
        self.counts: dict[str, int] = {}
        self.golds: list[int] = []

    def unlearning_data(self, ctx: TaskContext) -> UnlearningData:
        """The chosen forget corpora pooled in order, and the retain corpora (not limited by `--limit`)."""
        if not self.corpora.forget:
            raise NotImplementedError(f"task {self.name!r} has no WMDP forget corpus (WMDP publishes none for "
                                      "chemistry); name one with forget_corpora=...")
        return unlearning_corpora(ctx, self.corpora)

    def build_requests(self, ctx: TaskContext) -> list[Request]:
        requests: list[Request] = []
        self.counts, self.golds = {}, []
        for subset in self.subsets:
            spec = wmdp_spec(subset)
            rows = ctx.limited(ctx.load(spec))
            for index, row in enumerate(rows):
                where = f"dataset {spec.describe()}, row {index}"
                context = wmdp_context(SUBSETS[subset][1], row["question"], mc.check_choices(row, where))
                requests.append(mc.choose_request(context))
                self.golds.append(mc.answer_index(row, where))
            self.counts[subset] = len(rows)
        return requests

    def process_results(self, results: list[Result], ctx: TaskContext) -> TaskResult:
        correct = mc.correctness(results, self.golds)
        metrics: dict[str, MetricValue] = {}
        cursor = 0
        for subset in self.subsets:
            part = correct[cursor : cursor + self.counts[subset]]
            cursor += self.counts[subset]
            if len(self.subsets) > 1:
                metrics[f"acc_{subset}"] = mc.accuracy(part, VARIANT)
        group_variant = VARIANT if len(self.subsets) == 1 else VARIANT + "; group = size-weighted mean of the subsets"
        metrics = {"acc": mc.accuracy(correct, group_variant), **metrics}
        samples = [{"subset": s, "gold": g, "choice": r.choice, "logprobs": list(r.logprobs)}  # type: ignore[union-attr]
                   for s, g, r in zip(self._subset_per_item(), self.golds, results)]
        return TaskResult(
            metrics=metrics,
            items={"correct": correct},
            samples=samples,
            info={"subset_sizes": dict(self.counts), "chance": 0.25,
                  "single_pass_share": mc.single_pass_share(results)},
        )

    def _subset_per_item(self) -> list[str]:
        return [subset for subset in self.subsets for _ in range(self.counts[subset])]


class WmdpBio(WmdpTask):
    name = "wmdp_bio"
    subsets = ("wmdp_bio",)
    forget_corpora = ("bio-forget-corpus",)
    datasets = (wmdp_spec("wmdp_bio"),)
    description = "WMDP biology (cais/wmdp wmdp-bio), zero-shot multiple choice"


class WmdpChem(WmdpTask):
    name = "wmdp_chem"
    subsets = ("wmdp_chem",)
    datasets = (wmdp_spec("wmdp_chem"),)
    description = "WMDP chemistry (cais/wmdp wmdp-chem), zero-shot multiple choice"


class WmdpCyber(WmdpTask):
    name = "wmdp_cyber"
    subsets = ("wmdp_cyber",)
    forget_corpora = ("cyber-forget-corpus",)
    datasets = (wmdp_spec("wmdp_cyber"),)
    description = "WMDP cybersecurity (cais/wmdp wmdp-cyber), zero-shot multiple choice"


class WmdpGroup(WmdpTask):
    name = "wmdp"
    subsets = tuple(SUBSETS)
    forget_corpora = ("bio-forget-corpus", "cyber-forget-corpus")
    datasets = tuple(wmdp_spec(s) for s in SUBSETS)
    description = "WMDP bio + chem + cyber: each subset and the size-weighted group accuracy"
