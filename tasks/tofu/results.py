"""From the answers of one TOFU run to metric values: per-set item arrays, then the reported numbers.

Every number comes from the one `Score` of each distinct text and the one `Generate` of each question;
the per-item arrays go into the report so that this run can be another run's `--reference`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mu_eval.metrics.mia import auc, min_k_score, privleak
from mu_eval.metrics.rouge import rougeL_recall
from mu_eval.task import MetricValue
from mu_eval.tasks.tofu import metrics as M

MIN_K = 0.4
UTILITY_SETS = ("retain", "real_authors", "world_facts")
#: Sets whose Prob is normalised against the perturbed answers (the model knows them from pretraining).
NORMALISED_SETS = ("real_authors", "world_facts")

VARIANTS = {
    "prob": "mean_i exp(-NLL(answer_i)), NLL over answer tokens + appended EOS",
    "prob_normalised": "mean_i p(answer)/(p(answer) + sum_j p(perturbed_j)), p = exp(-NLL), EOS included",
    "rouge": "rouge_score ROUGE-L recall, use_stemmer=True, gold answer vs greedy generation",
    "tr_forget": "mean_i min(s_i, 1/s_i), s = exp(mean_j NLL(perturbed_j) - NLL(base)) (geometric)",
    "tr_utility": "mean_i max(0, 1 - 1/s_i), s = exp(mean_j NLL(perturbed_j) - NLL(base)) (geometric)",
    "fq": "scipy.stats.ks_2samp(s_model, s_reference) two-sided, method='auto', forget set",
    "es": "1 - k*/n over answer tokens, teacher-forced argmax, EOS excluded, k < n (1/n when the last is wrong)",
    "es_strict": "1 - k*/n over answer tokens, teacher-forced argmax, EOS excluded, k = n qualifies",
    "em": "fraction of answer tokens whose teacher-forced argmax is the label, EOS excluded",
    "auc": "Min-K% k=0.4 (EOS excluded) ROC AUC, forget answers positive vs holdout answers",
    "privleak": "(AUC_ref - AUC)/(1 - AUC_ref) x 100, Min-K% k=0.4, forget vs holdout; 0 = like the reference",
    "mu": "scipy.stats.hmean of {Prob (normalised for RA/WF), ROUGE-L recall, truth ratio} x {retain, RA, WF}",
}
#: How the answer tokens are found, by the `scoring` option (the Score boundary each value asks for).
SCORING = {"reference": "prefix", "offsets": "offsets"}
SCORING_VARIANTS = {
    "reference": "answer tokens = the tokens of prompt+answer after the first len(tokenize(prompt)) (TOFU, "
                 "open-unlearning)",
    "offsets": "answer tokens = every token holding a character of the answer (found by offsets)",
}
ES_MODES = ("reference", "strict")
MIA_SETS = {"all": "every forget row vs every holdout row (open-unlearning), whatever --limit and ds_size",
            "evaluated": "the forget rows evaluated (after --limit and ds_size) vs as many holdout rows"}


@dataclass
class SetItems:
    """Per-item values of one evaluation set, in dataset order."""

    prob: list[float]
    s: list[float]
    rouge: list[float]
    extraction_strength: list[float] = field(default_factory=list)
    exact_memorization: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.prob)


def fingerprint(texts: Sequence[str]) -> str:
    """SHA-256 of the evaluated texts: a reference is only comparable when computed on the same items."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def token_metrics(result: Any, es_mode: M.EsMode = "reference") -> tuple[float, float, float]:
    """(ES, EM, Min-K% 40) of one scored answer; token metrics exclude the appended EOS.

    An answer with no token left once the EOS is set aside scores Min-K% 0 in "reference" mode, as
    open-unlearning's attack does (NaN, dropped from the AUC, in "strict" mode).
    """
    greedy = result.greedy[result.token_slice(include_eos=False)]
    min_k = min_k_score(result, MIN_K, include_eos=False)
    if not greedy and es_mode == "reference":
        min_k = 0.0
    return M.extraction_strength(greedy, es_mode), M.exact_memorization(greedy), min_k


def _value(value: float, n: int, higher: bool | None, variant: str) -> MetricValue:
    if not math.isfinite(value):
        return MetricValue.missing(f"not computable: no finite per-item values ({variant})", n, higher)
    return MetricValue(float(value), n, higher, variant=variant)


def set_metrics(role: str, items: SetItems, es_variant: str = VARIANTS["es"]) -> dict[str, MetricValue]:
    """Prob, ROUGE and truth ratio of one set (and ES/EM for forget)."""
    forget = role == "forget"
    higher = not forget
    prob_variant = VARIANTS["prob_normalised"] if role in NORMALISED_SETS else VARIANTS["prob"]
    truth_ratio = M.forget_truth_ratio(items.s) if forget else M.utility_truth_ratio(items.s)
    values = {
        f"{role}_prob": _value(M.mean(items.prob), items.n, higher, prob_variant),
        f"{role}_rougeL_recall": _value(M.mean(items.rouge), items.n, higher, VARIANTS["rouge"]),
        f"{role}_truth_ratio": _value(
            truth_ratio, items.n, True, VARIANTS["tr_forget"] if forget else VARIANTS["tr_utility"]
        ),
    }
    if forget:
        values["forget_extraction_strength"] = _value(
            M.mean(items.extraction_strength), items.n, False, es_variant
        )
        values["forget_exact_memorization"] = _value(M.mean(items.exact_memorization), items.n, False, VARIANTS["em"])
    return values


def utility_metric(values: dict[str, MetricValue], counts: dict[str, int]) -> MetricValue:
    """Model utility from the nine already computed set values."""
    names = [f"{role}_{kind}" for role in UTILITY_SETS for kind in ("prob", "rougeL_recall", "truth_ratio")]
    components = [values[name].value for name in names]
    n = sum(counts[role] for role in UTILITY_SETS)
    if any(c is None for c in components):
        missing = [name for name, c in zip(names, components) if c is None]
        return MetricValue.missing(f"components not computable: {', '.join(missing)}", n, True)
    return _value(M.model_utility(components), n, True, VARIANTS["mu"])


def items_section(sets: dict[str, SetItems], forget_min_k: list[float], holdout_min_k: list[float]
                  ) -> dict[str, list[float]]:
    """Per-item arrays stored in the report (what a later run needs from this one as its reference).

    `forget_min_k` and `holdout_min_k` are the membership-inference sets, which need not be the evaluated rows.
    """
    section: dict[str, list[float]] = {}
    for role, items in sets.items():
        section[f"{role}_prob"] = items.prob
        section[f"{role}_truth_ratio_s"] = items.s
        section[f"{role}_rougeL_recall"] = items.rouge
    forget = sets["forget"]
    section["forget_extraction_strength"] = forget.extraction_strength
    section["forget_exact_memorization"] = forget.exact_memorization
    section["forget_min_k"] = forget_min_k
    section["holdout_min_k"] = holdout_min_k
    return section


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def reference_section(reference: dict[str, Any] | None, task_name: str) -> dict[str, Any] | None:
    if not reference:
        return None
    return reference.get("tasks", {}).get(task_name)


def _comparable(reference_task: dict[str, Any], info: dict[str, Any], key: str, n: int, m: int) -> str | None:
    """None when the reference covers the same items, scored the same way, else the reason it does not."""
    ours, theirs = info.get(key), reference_task.get("info", {}).get(key)
    if ours and theirs and ours != theirs:
        return f"the reference was computed on other items ({key} differs: another split, ds_size or data)"
    if n != m:
        return f"the reference has {m} items where this run has {n}"
    our_scoring, their_scoring = info.get("scoring"), reference_task.get("info", {}).get("scoring")
    if our_scoring and their_scoring and our_scoring != their_scoring:
        return (f"the reference was scored with scoring={their_scoring}, this run with scoring={our_scoring}: "
                "their answers' tokens differ")
    return None


def reference_metrics(
    task_name: str,
    items: dict[str, list[float]],
    info: dict[str, Any],
    reference: dict[str, Any] | None,
) -> dict[str, MetricValue]:
    """Forget quality and privleak against the reference (retain-model) report; null with a reason without one."""
    s_model = _finite(items["forget_truth_ratio_s"])
    auc_model = auc(items["forget_min_k"], items["holdout_min_k"])
    n = len(items["forget_truth_ratio_s"])
    n_mia = len(items["forget_min_k"]) + len(items["holdout_min_k"])
    mia_variant = f"{VARIANTS['auc']}; {len(items['forget_min_k'])} + {len(items['holdout_min_k'])} answers"
    values = {"mia_min_k_auc": _value(auc_model, n_mia, None, mia_variant)}
    reference_task = reference_section(reference, task_name)
    if reference_task is None:
        reason = (
            "no reference report given (--reference)" if not reference
            else f"the reference report has no task {task_name!r}"
        )
        reason += f": needs the report of the matching retain model on {task_name}"
        values["forget_quality"] = MetricValue.missing(reason, n, True)
        values["privleak"] = MetricValue.missing(reason, n_mia, None)
        return values
    theirs = reference_task.get("items", {})
    s_reference = theirs.get("forget_truth_ratio_s")
    if s_reference is None:
        values["forget_quality"] = MetricValue.missing("reference report lacks per-item forget_truth_ratio_s", n, True)
    elif problem := _comparable(reference_task, info, "forget_fingerprint", n, len(s_reference)):
        values["forget_quality"] = MetricValue.missing(problem, n, True)
    elif not s_model or not _finite(s_reference):
        values["forget_quality"] = MetricValue.missing("no finite truth-ratio values to compare", n, True)
    else:
        statistic, pvalue = M.ks_test(s_model, _finite(s_reference))
        values["forget_quality"] = MetricValue(
            pvalue, n, True, variant=f"{VARIANTS['fq']}; n={len(s_model)}, m={len(_finite(s_reference))}, "
            f"D={statistic:.6f}"
        )
    values["privleak"] = _privleak(theirs, reference_task, info, auc_model, items)
    return values


def _privleak(theirs: dict, reference_task: dict, info: dict, auc_model: float, items: dict) -> MetricValue:
    n = len(items["forget_min_k"]) + len(items["holdout_min_k"])
    members, nonmembers = theirs.get("forget_min_k"), theirs.get("holdout_min_k")
    if members is None or nonmembers is None:
        return MetricValue.missing("reference report lacks per-item forget_min_k / holdout_min_k", n, None)
    if reason := _comparable(reference_task, info, "mia_fingerprint", len(items["forget_min_k"]), len(members)):
        return MetricValue.missing(reason, n, None)
    auc_reference = auc(_finite(members), _finite(nonmembers))
    value = privleak(auc_model, auc_reference)
    if value is None:
        return MetricValue.missing(f"undefined for AUC {auc_model:.4g} against reference AUC {auc_reference:.4g}",
                                   n, None)
    return MetricValue(value, n, None, variant=f"{VARIANTS['privleak']}; AUC_ref={auc_reference:.6f}")


def summarise_counts(sets: dict[str, SetItems]) -> dict[str, int]:
    return {role: items.n for role, items in sets.items()}


def as_float_list(values: np.ndarray | Sequence[float]) -> list[float]:
    return [float(v) for v in values]


def rouge_items(golds: Sequence[str], generations: Sequence[str]) -> list[float]:
    return [rougeL_recall(gold, text) for gold, text in zip(golds, generations)]
