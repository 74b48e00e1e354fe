"""TOFU forget10 as the benchmarks evaluate it: the plan (prompts, answers), per-item values and metrics.

Both paths feed the same metric functions (docs/tofu.md), so any difference between their metric
values comes from the model passes, never from the formulas. Metric names are those of the
`tofu_forget10` task's report, so that its values can be compared with the baseline's by name. The fast
path asks the engine one request per distinct text; the baseline (benchmarks/tofu_baseline.py) runs one
sweep per metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mu_eval.requests import Generate, Request, Result, Score, ScoreResult

TOFU_ID = "locuslab/TOFU"
TASK_NAME = "tofu_forget10"
MIN_K = 0.4
#: Which tokens are the answer: the task's default (`scoring=reference`), the prompt-length rule of the
#: reference implementations.
BOUNDARY = "prefix"


@dataclass(frozen=True)
class SetSpec:
    """One TOFU eval set: its config, the truth-ratio base answer, and how Prob and TR are aggregated."""

    name: str
    config: str
    base_key: str
    normalised: bool
    forget: bool = False


EVAL_SETS = (
    SetSpec("forget", "forget10_perturbed", "paraphrased_answer", normalised=False, forget=True),
    SetSpec("retain", "retain_perturbed", "paraphrased_answer", normalised=False),
    SetSpec("real_authors", "real_authors_perturbed", "answer", normalised=True),
    SetSpec("world_facts", "world_facts_perturbed", "answer", normalised=True),
)
HOLDOUT_CONFIG = "holdout10"


@dataclass
class EvalSet:
    spec: SetSpec
    prompts: list[str]
    answers: list[str]
    bases: list[str]
    perturbed: list[list[str]]


@dataclass
class TofuPlan:
    """Everything the forget10 evaluation asks of a model, in dataset order."""

    sets: list[EvalSet]
    holdout_prompts: list[str]
    holdout_answers: list[str]
    max_new_tokens: int

    def score_requests(self) -> list[Score]:
        """Every Score of the evaluation (with repeats; the engine deduplicates)."""
        requests = []
        for s in self.sets:
            for i, prompt in enumerate(s.prompts):
                requests.append(Score(prompt, s.answers[i], True, BOUNDARY))
                requests.append(Score(prompt, s.bases[i], True, BOUNDARY))
                requests.extend(Score(prompt, p, True, BOUNDARY) for p in s.perturbed[i])
        requests.extend(Score(p, a, True, BOUNDARY) for p, a in zip(self.holdout_prompts, self.holdout_answers))
        return requests

    def generate_requests(self) -> list[Generate]:
        return [Generate(p, self.max_new_tokens) for s in self.sets for p in s.prompts]

    def requests(self) -> list[Request]:
        return [*self.score_requests(), *self.generate_requests()]


def load_plan(data_dir: Path, chat: Callable[[str], str], max_new_tokens: int) -> TofuPlan:
    """Read the local TOFU files through mu-eval's loader and format every question with `chat`."""
    from mu_eval.data import DatasetSpec, load_rows

    sets = []
    for spec in EVAL_SETS:
        rows = load_rows(DatasetSpec(TOFU_ID, spec.config, "train"), data_dir)
        sets.append(EvalSet(spec, [chat(r["question"]) for r in rows], [r["answer"] for r in rows],
                            [r[spec.base_key] for r in rows], [list(r["perturbed_answer"]) for r in rows]))
    holdout = load_rows(DatasetSpec(TOFU_ID, HOLDOUT_CONFIG, "train"), data_dir)
    return TofuPlan(sets, [chat(r["question"]) for r in holdout], [r["answer"] for r in holdout], max_new_tokens)


@dataclass(frozen=True)
class TokenScores:
    """Per scored token: the target log-prob and whether it was the argmax (last entry = appended EOS)."""

    logprobs: tuple[float, ...]
    greedy: tuple[bool, ...]
    eos_appended: bool = True

    @classmethod
    def from_result(cls, result: ScoreResult) -> TokenScores:
        return cls(tuple(result.logprobs), tuple(result.greedy), result.eos_appended)

    def cut(self, include_eos: bool) -> int:
        return len(self.logprobs) - (1 if self.eos_appended and not include_eos else 0)

    def nll(self, include_eos: bool = True) -> float:
        values = self.logprobs[: self.cut(include_eos)]
        return -sum(values) / len(values) if values else math.nan


@dataclass
class SetValues:
    """Per-item model outputs one eval set's metrics are computed from.

    `memorization` and `min_k` are the forget set's extra passes (ES/EM and privleak's Min-K%); the fast
    path fills them with the same answers as `answer`, the baseline with its own sweeps.
    """

    answer: list[TokenScores]
    base: list[TokenScores]
    perturbed: list[list[TokenScores]]
    generations: list[str]
    memorization: list[TokenScores] = field(default_factory=list)
    min_k: list[TokenScores] = field(default_factory=list)


def exact_memorization(t: TokenScores) -> float:
    """Fraction of answer tokens (EOS excluded) that are the teacher-forced argmax."""
    flags = t.greedy[: t.cut(False)]
    return sum(flags) / len(flags) if flags else math.nan


def extraction_strength(t: TokenScores) -> float:
    """1 - k*/n with k* the smallest k < n whose suffix from k is all argmax hits, n - 1 when none is (the
    task's default, open-unlearning's rule); 0 without a token."""
    flags = t.greedy[: t.cut(False)]
    k = len(flags)
    while k > 0 and flags[k - 1]:
        k -= 1
    return 1 - min(k, len(flags) - 1) / len(flags) if flags else 0.0


def min_k_score(t: TokenScores, k: float = MIN_K) -> float:
    """Mean of the m = max(1, floor(k T)) smallest token log-probs, EOS excluded (0 without a token)."""
    values = sorted(t.logprobs[: t.cut(False)])
    if not values:
        return 0.0
    m = max(1, math.floor(k * len(values)))
    return sum(values[:m]) / m


def set_metrics(s: EvalSet, v: SetValues, rouge: bool = True) -> dict[str, float]:
    """Prob (normalised for RA/WF), ROUGE-L recall and truth ratio of one set; ES and EM for forget."""
    n = len(s.prompts)
    if s.spec.normalised:
        probs = []
        for answer, perturbed in zip(v.answer, v.perturbed):
            true = math.exp(-answer.nll())
            probs.append(true / (true + sum(math.exp(-p.nll()) for p in perturbed)))
    else:
        probs = [math.exp(-a.nll()) for a in v.answer]
    stats = [math.exp(sum(p.nll() for p in pert) / len(pert) - base.nll()) for base, pert in zip(v.base, v.perturbed)]
    if s.spec.forget:
        ratios = [min(x, 1 / x) for x in stats]
    else:
        ratios = [max(0.0, 1 - 1 / x) for x in stats]
    out = {"prob": sum(probs) / n, "truth_ratio": sum(ratios) / n}
    if rouge:
        from mu_eval.metrics.rouge import rougeL_recall

        out["rougeL_recall"] = sum(rougeL_recall(gold, text) for gold, text in zip(s.answers, v.generations)) / n
    if s.spec.forget:
        out["extraction_strength"] = sum(extraction_strength(t) for t in v.memorization) / n
        out["exact_memorization"] = sum(exact_memorization(t) for t in v.memorization) / n
    return {f"{s.spec.name}_{key}": value for key, value in out.items()}


def tofu_metrics(plan: TofuPlan, values: Mapping[str, SetValues], holdout_min_k: list[TokenScores],
                 generations: bool = True) -> dict[str, float]:
    """All metric values of the forget10 evaluation (MU = harmonic mean of the 9 retain/RA/WF values).

    With `generations=False` (a scoring-only run) ROUGE and model utility are left out.
    """
    metrics: dict[str, float] = {}
    for s in plan.sets:
        metrics.update(set_metrics(s, values[s.spec.name], rouge=generations))
    if generations:
        utility = [metrics[f"{name}_{key}"] for name in ("retain", "real_authors", "world_facts")
                   for key in ("prob", "rougeL_recall", "truth_ratio")]
        metrics["model_utility"] = 0.0 if min(utility) <= 0 else len(utility) / sum(1 / x for x in utility)
    forget_scores = [min_k_score(t) for t in values["forget"].min_k]
    metrics["mia_min_k_auc"] = auc(forget_scores, [min_k_score(t) for t in holdout_min_k])
    return metrics


def auc(members: list[float], nonmembers: list[float]) -> float:
    """P(member score > non-member score) + ties/2 (members = forget set, the positive class)."""
    if not members or not nonmembers:
        return math.nan
    wins = sum((m > h) + 0.5 * (m == h) for m in members for h in nonmembers)
    return wins / (len(members) * len(nonmembers))


def fast_values(plan: TofuPlan, answers: Mapping[Request, Result]) -> tuple[dict[str, SetValues], list]:
    """Per-set values from the engine's answers: each distinct text was scored once and is reused.

    Generations missing from `answers` (a scoring-only run) are empty strings.
    """

    def score(prompt: str, text: str) -> TokenScores:
        return TokenScores.from_result(answers[Score(prompt, text, True, BOUNDARY)])

    values = {}
    for s in plan.sets:
        answer = [score(p, a) for p, a in zip(s.prompts, s.answers)]
        values[s.spec.name] = SetValues(
            answer=answer,
            base=[score(p, b) for p, b in zip(s.prompts, s.bases)],
            perturbed=[[score(p, x) for x in pert] for p, pert in zip(s.prompts, s.perturbed)],
            generations=[_text(answers.get(Generate(p, plan.max_new_tokens))) for p in s.prompts],
            memorization=answer if s.spec.forget else [],
            min_k=answer if s.spec.forget else [],
        )
    holdout = [score(p, a) for p, a in zip(plan.holdout_prompts, plan.holdout_answers)]
    return values, holdout


def _text(result: Result | None) -> str:
    """A generation's text; a scoring-only run has none and stands in an empty string."""
    return getattr(result, "text", "")


def run_fast(backend: Any, plan: TofuPlan, requests: list[Request] | None = None) -> dict[str, Any]:
    """The whole evaluation through one engine sweep, then the metrics."""
    from mu_eval.engine import Engine

    engine = Engine(backend, progress=False)
    answers = engine.answer(requests if requests is not None else plan.requests())
    values, holdout = fast_values(plan, answers)
    return {"metrics": tofu_metrics(plan, values, holdout), "values": values, "holdout": holdout,
            "engine": engine.stats.to_json()}


def item_differences(a: Mapping[str, SetValues], b: Mapping[str, SetValues]) -> dict[str, float]:
    """Largest per-item NLL difference between two paths, the fraction of scored tokens whose
    argmax flag agrees, and the fraction of identical generations."""
    worst, flags_same, flags, same, total = 0.0, 0, 0, 0, 0
    for name, left in a.items():
        right = b[name]
        pairs = [*zip(left.answer, right.answer), *zip(left.base, right.base),
                 *((x, y) for p, q in zip(left.perturbed, right.perturbed) for x, y in zip(p, q)),
                 *zip(left.memorization, right.memorization)]
        for x, y in pairs:
            worst = max(worst, abs(x.nll() - y.nll()))
            flags_same += sum(f == g for f, g in zip(x.greedy, y.greedy))
            flags += max(len(x.greedy), len(y.greedy))
        same += sum(g == h for g, h in zip(left.generations, right.generations))
        total += len(left.generations)
    return {"max_item_nll_diff": worst, "greedy_flag_agreement": flags_same / flags if flags else math.nan,
            "identical_generations": same / total if total else math.nan}


def judge_items(agreement: dict[str, Any]) -> bool:
    """Whether per-item differences are within the tolerance recorded in `agreement`."""
    tol = agreement["tolerance"]
    identical = agreement.get("identical_generations", math.nan)
    return (agreement["max_item_nll_diff"] <= tol["item_atol"]
            and agreement["greedy_flag_agreement"] >= tol["min_greedy_flag_agreement"]
            and (math.isnan(identical) or identical >= tol["min_identical_generations"]))


def registered_task() -> tuple[Any, str | None]:
    """The `tofu_forget10` task and None, or None and why it is not available."""
    from mu_eval.plugins import get_registry

    try:
        return get_registry().task(TASK_NAME), None
    except KeyError:
        return None, f"task {TASK_NAME!r} is not registered (yet)"
    except Exception as error:  # a plugin failing while registering must not stop the benchmark
        return None, f"plugin registry failed: {type(error).__name__}: {error}"


def task_requests(backend: Any, data_dir: Path) -> tuple[list[Request] | None, str]:
    """The registered task's own requests and their source, or None and why they are not available."""
    from mu_eval.data import load_rows
    from mu_eval.task import TaskContext

    task, reason = registered_task()
    if task is None:
        return None, f"TOFU mirror ({reason})"
    ctx = TaskContext(load=lambda spec: load_rows(spec, data_dir), chat=backend.chat_formatter(),
                      uses_chat_template=backend.has_chat_template(), options=dict(task.options))
    return list(task.build_requests(ctx)), f"task {TASK_NAME}"
