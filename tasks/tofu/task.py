"""The TOFU task (docs/tofu.md): one class for every forget split and every TOFU-schema data source.

Requests: one `Score(prompt, text, append_eos=True)` per distinct text (answer, truth-ratio base, each
perturbed answer, each holdout answer) and one greedy `Generate` per question; every metric is computed
from those answers (see `results.py`), none runs its own sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mu_eval.data import DataError
from mu_eval.options import option
from mu_eval.requests import Generate, GenerateResult, Request, Result, Score, ScoreResult, Truncation
from mu_eval.task import Task, TaskContext, TaskOptionError, TaskResult, TextExample, UnlearningData
from mu_eval.tasks.tofu import metrics as M
from mu_eval.tasks.tofu import results as R
from mu_eval.tasks.tofu.sources import EVAL_SETS, HubSource, TofuSource, check_split

MAX_NEW_TOKENS = 200
#: open-unlearning's QA datasets tokenize prompt and prompt + answer with truncation to their first 512 tokens
#: (`max_length: 512`) when no chat template is applied; with a chat template they cut nothing.
OPEN_UNLEARNING_TRUNCATION = Truncation("right", 512)
BASE_FIELD = {"forget": "paraphrased_answer", "retain": "paraphrased_answer",
              "real_authors": "answer", "world_facts": "answer"}


#: Fields holding one text each, and the field holding a list of texts (the perturbed answers).
TEXT_FIELDS = ("question", "answer", "paraphrased_answer")
TEXT_LIST_FIELD = "perturbed_answer"


def check_row_types(task: str, role: str, index: int, row: Any) -> None:
    """A row whose fields are not the texts TOFU's files hold stops the run with the row and field named,
    before any model work (a number in place of a text would otherwise fail deep in tokenisation)."""
    where = f"{task}: {role} row {index}"
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object, got {type(row).__name__}")
    for name in TEXT_FIELDS:
        if name in row and not isinstance(row[name], str):
            raise DataError(f"{where}: {name} must be a string, got {type(row[name]).__name__}")
    if TEXT_LIST_FIELD in row:
        value = row[TEXT_LIST_FIELD]
        if not isinstance(value, list) or not value or not all(isinstance(text, str) for text in value):
            raise DataError(f"{where}: {TEXT_LIST_FIELD} must be a non-empty list of strings, got {value!r:.60}")


@dataclass
class TofuOptions:
    """The options of the TOFU tasks (`--task-args`)."""

    ds_size: int | None = option(None, minimum=1, help="first N rows of each set (legacy; 300 in the original code)")
    prompt_template: str | None = option(
        None, help="format string with {question} used instead of the model's chat template, e.g. "
                   "'[INST] {question} [/INST]' for the legacy Llama-2 runs; a literal backslash-n is a newline")
    max_new_tokens: int = option(MAX_NEW_TOKENS, minimum=1, help="tokens generated per answer")
    scoring: str = option("reference", choices=tuple(R.SCORING),
                          help="which tokens are the answer: reference (TOFU/open-unlearning's prompt masking) or "
                               "offsets (mu-eval's character offsets)")
    extraction_strength: str = option("reference", choices=R.ES_MODES,
                                      help="reference (1/n when the last token is wrong, as open-unlearning) or "
                                           "strict (0)")
    mia_sets: str = option("all", choices=tuple(R.MIA_SETS),
                           help="all (every forget vs every holdout row, as open-unlearning) or evaluated (the rows "
                                "--limit and ds_size leave)")


def score_at(results: list[Result], position: int) -> ScoreResult:
    result = results[position]
    if not isinstance(result, ScoreResult):
        raise TypeError(f"expected a ScoreResult at position {position}, got {type(result).__name__}")
    return result


def text_at(results: list[Result], position: int) -> str:
    result = results[position]
    if not isinstance(result, GenerateResult):
        raise TypeError(f"expected a GenerateResult at position {position}, got {type(result).__name__}")
    return result.text


@dataclass(frozen=True)
class PlannedItem:
    """One question of an evaluation set and the positions of its requests in the task's request list."""

    row: dict
    answer: int
    base: int = -1
    perturbed: tuple[int, ...] = ()
    generation: int = -1


class RequestPlan:
    """Distinct requests in first-seen order: a text asked twice (RA/WF base = answer) is scored once."""

    def __init__(self) -> None:
        self.index: dict[Request, int] = {}

    def add(self, request: Request) -> int:
        return self.index.setdefault(request, len(self.index))

    @property
    def requests(self) -> list[Request]:
        return list(self.index)


class TofuTask(Task):
    """TOFU forget/retain/real-authors/world-facts evaluation: Prob, ROUGE-L recall, truth ratio, model
    utility, forget quality, extraction strength, exact memorization and privleak.

    Options: `ds_size` (legacy: first N rows of each set, 300 in the original code), `prompt_template`
    (a format string with `{question}` replacing the model's chat template, e.g. "[INST] {question} [/INST]"
    for the legacy Llama-2 runs; a literal backslash-n becomes a newline), `max_new_tokens` (200).
    By default every number follows the reference code (TOFU, open-unlearning); each place where mu-eval's
    own choice differs is an option: `scoring` (reference | offsets: which tokens are the answer),
    `extraction_strength` (reference | strict: 1/n or 0 when the last token is wrong) and `mia_sets`
    (all | evaluated: whether --limit and ds_size also shrink the membership-inference sets).
    """

    split = "forget10"
    Options: ClassVar[type | None] = TofuOptions
    #: What attacks (relearning, quantization, weight recovery) track: the metrics of the forget set.
    forget_metrics: tuple[str, ...] = (
        "forget_prob", "forget_rougeL_recall", "forget_truth_ratio", "forget_extraction_strength",
        "forget_exact_memorization", "mia_min_k_auc", "forget_quality", "privleak",
    )
    #: ROUGE-L compares greedy generations with the answers; model utility is a mean that includes three of them.
    generation_metrics: tuple[str, ...] | None = (
        *(f"{role}_rougeL_recall" for role in EVAL_SETS), "model_utility",
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        check_split(self.split)
        settings = self.settings
        self.ds_size = settings.ds_size
        self.max_new_tokens = settings.max_new_tokens
        template = settings.prompt_template
        if template is not None and "{question}" not in template:
            raise TaskOptionError(f"task option prompt_template must contain '{{question}}', got {template!r}")
        self.template = template.replace("\\n", "\n") if template is not None else None
        self.scoring = settings.scoring
        self.boundary = R.SCORING[self.scoring]
        self.es_mode = settings.extraction_strength
        self.mia_sets = settings.mia_sets
        self.source = self.make_source()
        self.datasets = self.source.datasets(self.split)

    def make_source(self) -> TofuSource:
        return HubSource()

    def config(self) -> dict[str, Any]:
        config = super().config()
        config.update({"split": self.split, "ds_size": self.ds_size, "max_new_tokens": self.max_new_tokens,
                       "prompt_template": self.template, "min_k": R.MIN_K, **self.source.describe(),
                       "scoring": self.scoring, "scoring_rule": R.SCORING_VARIANTS[self.scoring],
                       "extraction_strength": self.es_mode, "mia_sets": self.mia_sets,
                       "mia_sets_rule": R.MIA_SETS[self.mia_sets]})
        return config

    # -- prompts and rows ----------------------------------------------------------------------------------
    def prompt(self, ctx: TaskContext, question: str) -> str:
        """The model's chat template (or the core's plain fallback) unless the run overrides the template."""
        return self.template.format(question=question) if self.template is not None else ctx.chat(question)

    def eval_rows(self, ctx: TaskContext, role: str, whole: bool = False) -> list[dict]:
        """The rows of one set, cut by ds_size and --limit unless `whole`."""
        rows = self.source.rows(ctx, role, self.split)
        if self.ds_size is not None and not whole:
            rows = rows[: self.ds_size]
        rows = rows if whole else ctx.limited(rows)
        if not rows:
            raise DataError(f"{self.name}: the {role} set is empty")
        for index, row in enumerate(rows):
            check_row_types(self.name, role, index, row)
        return rows

    def truncation(self, ctx: TaskContext) -> Truncation | None:
        """open-unlearning's cut at 512 tokens where its code applies it (a prompt without a chat template);
        None elsewhere: a text longer than the model's context is then an error."""
        return OPEN_UNLEARNING_TRUNCATION if self.template is not None or not ctx.uses_chat_template else None

    def answer_score(self, prompt: str, text: str, ctx: TaskContext | None = None) -> Score:
        """One answer's Score: EOS appended, answer tokens found by this run's `scoring` rule, cut as
        open-unlearning cuts it when the rule is the reference's (`truncation`)."""
        rule = self.truncation(ctx) if ctx is not None and self.boundary == "prefix" else None
        return Score(prompt, text, True, self.boundary, rule)

    # -- requests ------------------------------------------------------------------------------------------
    def build_requests(self, ctx: TaskContext) -> list[Request]:
        plan = RequestPlan()
        self._sets: dict[str, list[PlannedItem]] = {}
        for role in EVAL_SETS:
            self._sets[role] = [self._plan_item(plan, ctx, role, index, row)
                                for index, row in enumerate(self.eval_rows(ctx, role))]
        whole = self.mia_sets == "all"
        self._mia_forget = (self._mia_items(plan, ctx, self.eval_rows(ctx, "forget", whole=True)) if whole
                            else self._sets["forget"])
        self._holdout = self._mia_items(plan, ctx, self.eval_rows(ctx, "holdout", whole=whole))
        self._plan = plan
        return plan.requests

    def _mia_items(self, plan: RequestPlan, ctx: TaskContext, rows: list[dict]) -> list[PlannedItem]:
        """Membership-inference texts: each row's answer after its prompt."""
        return [PlannedItem(row, plan.add(self.answer_score(self.prompt(ctx, row["question"]), row["answer"], ctx)))
                for row in rows]

    def _plan_item(self, plan: RequestPlan, ctx: TaskContext, role: str, index: int, row: dict) -> PlannedItem:
        perturbed = row["perturbed_answer"]
        prompt = self.prompt(ctx, row["question"])
        return PlannedItem(
            row=row,
            answer=plan.add(self.answer_score(prompt, row["answer"], ctx)),
            base=plan.add(self.answer_score(prompt, row[BASE_FIELD[role]], ctx)),
            perturbed=tuple(plan.add(self.answer_score(prompt, text, ctx)) for text in perturbed),
            generation=plan.add(Generate(prompt, self.max_new_tokens, truncation=self.truncation(ctx))),
        )

    # -- results -------------------------------------------------------------------------------------------
    def process_results(self, results: list[Result], ctx: TaskContext) -> TaskResult:
        sets: dict[str, R.SetItems] = {}
        samples: list[dict] = []
        for role, planned in self._sets.items():
            sets[role] = self._set_items(role, planned, results)
            for item, prob, s, rouge in zip(planned, sets[role].prob, sets[role].s, sets[role].rouge):
                samples.append({"set": role, "question": item.row["question"], "answer": item.row["answer"],
                                "generation": text_at(results, item.generation),
                                "rougeL_recall": rouge, "prob": prob, "truth_ratio_s": s})
        forget_min_k = [self._min_k(results, item) for item in self._mia_forget]
        holdout_min_k = [self._min_k(results, item) for item in self._holdout]
        items = R.items_section(sets, forget_min_k, holdout_min_k)
        forget_rows = [item.row for item in self._sets["forget"]]
        info = {
            "n": {**R.summarise_counts(sets), "holdout": len(self._holdout), "mia_forget": len(self._mia_forget)},
            "forget_fingerprint": R.fingerprint(
                [text for row in forget_rows for text in (row["question"], row["answer"])]),
            "mia_fingerprint": R.fingerprint([i.row["answer"] for i in self._mia_forget] + ["\0holdout"]
                                             + [i.row["answer"] for i in self._holdout]),
            "scoring": self.scoring,
            "distinct_requests": len(self._plan.index),
            "prompt_example": self.prompt(ctx, forget_rows[0]["question"]),
        }
        metrics = {}
        es_variant = R.VARIANTS["es"] if self.es_mode == "reference" else R.VARIANTS["es_strict"]
        for role in EVAL_SETS:
            metrics.update(R.set_metrics(role, sets[role], es_variant))
        metrics["model_utility"] = R.utility_metric(metrics, R.summarise_counts(sets))
        metrics.update(R.reference_metrics(self.name, items, info, ctx.reference))
        return TaskResult(metrics=metrics, items=items, samples=samples, info=info)

    def _set_items(self, role: str, planned: list[PlannedItem], results: list[Result]) -> R.SetItems:
        answers = [score_at(results, item.answer) for item in planned]
        answer_nll = [a.nll(include_eos=True) for a in answers]
        base_nll = [score_at(results, item.base).nll(include_eos=True) for item in planned]
        perturbed_nll = [[score_at(results, j).nll(include_eos=True) for j in item.perturbed] for item in planned]
        if role in R.NORMALISED_SETS:
            prob = M.normalised_probabilities(answer_nll, perturbed_nll)
        else:
            prob = M.probabilities(answer_nll)
        generations = [text_at(results, item.generation) for item in planned]
        items = R.SetItems(
            prob=R.as_float_list(prob),
            s=R.as_float_list(M.truth_ratio_statistics(base_nll, perturbed_nll)),
            rouge=R.rouge_items([item.row["answer"] for item in planned], generations),
        )
        if role == "forget":
            token = [R.token_metrics(a, self.es_mode) for a in answers]
            items.extraction_strength = [t[0] for t in token]
            items.exact_memorization = [t[1] for t in token]
        return items

    def _min_k(self, results: list[Result], item: PlannedItem) -> float:
        return R.token_metrics(score_at(results, item.answer), self.es_mode)[2]

    # -- data for unlearning methods and attacks -----------------------------------------------------------
    def unlearning_data(self, ctx: TaskContext) -> UnlearningData:
        """forgetXX, retainXX and holdoutXX (all rows, not limited) as prompt/answer pairs in this task's format.

        Forget examples carry the perturbed answers of the same question (forgetXX_perturbed) as
        `alternates`: the wrong-but-plausible answers that DPO with alternate answers prefers to the truth.
        """
        eval_rows = self.source.rows(ctx, "forget", self.split)
        perturbed = {row["question"]: tuple(row["perturbed_answer"]) for row in eval_rows}

        def examples(role: str) -> list[TextExample]:
            return [TextExample(self.prompt(ctx, row["question"]), row["answer"],
                                perturbed.get(row["question"], ()) if role == "forget_train" else ())
                    for row in self.source.rows(ctx, role, self.split)]

        return UnlearningData(forget=examples("forget_train"), retain=examples("retain_train"),
                              holdout=examples("holdout"))


def task_class(prefix: str, split: str, base: type[TofuTask] = TofuTask, about: str = "TOFU") -> type[TofuTask]:
    """A registered subclass per split (`tofu_forget10`, ...), so `mu-eval list tasks` shows each."""
    attributes = {"name": f"{prefix}_{split}", "split": split,
                  "description": f"{about} {split}: forget quality, model utility and memorization probes."}
    return type(f"{base.__name__}_{split}", (base,), attributes)
