"""Membership inference (`mia`): LOSS, Zlib, Min-K%, Min-K%++, reference model and gradient norm.

Every score is member-oriented (higher = more likely trained on) and every AUC takes the members (the
forget set) as the positive class (docs/attacks.md): ~1 the forget set still looks trained
on, ~0.5 it looks like never-seen data, < 0.5 it looks less familiar than unseen data (over-unlearning).
The four single-pass scores come from the Score answers of this run's engine (free when a task already
asked the same requests); the reference score needs one pass of the reference model and the gradient
norm one backward pass per text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mu_eval import attack_inputs
from mu_eval.attack import AttackContext, AttackError, ConfiguredAttack
from mu_eval.attacks.common import answer_on, free_memory, load_backend, require_torch_model
from mu_eval.attacks.gradnorm import gradient_norm_scores
from mu_eval.metrics import mia as mia_scores
from mu_eval.options import option
from mu_eval.requests import ScoreResult

ALL_SCORES = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm")
DEFAULT_SCORES = ("loss", "zlib", "min_k", "min_k_plus_plus", "gradnorm")
CONVENTION = "members (forget set) are the positive class; every score is higher for more likely members"


def reference_auc(reference: dict | None, task: str, score: str) -> float | None:
    """The AUC of the same task and score in the reference report's `mia` section, if it has one."""
    try:
        value = reference["attacks"]["mia"]["tasks"][task]["scores"][score]["auc"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    return float(value) if value is not None else None


def score_section(members: list[float], nonmembers: list[float], reference_value: float | None) -> dict[str, Any]:
    section: dict[str, Any] = dict(mia_scores.mia_summary(members, nonmembers))
    if reference_value is None:
        section["privleak"] = None
        section["privleak_reason"] = "no reference report with a mia section for this task and score"
    else:
        section["privleak"] = mia_scores.privleak(section["auc"], reference_value)
        section["reference_auc"] = reference_value
        if section["privleak"] is None:
            section["privleak_reason"] = "undefined: reference AUC is 1 or an AUC is not finite"
    return section


def score_of(result: Any) -> ScoreResult:
    """A Score request's answer (the engine answers each request with its kind's result)."""
    if not isinstance(result, ScoreResult):
        raise TypeError(f"expected a ScoreResult, got {type(result).__name__}")
    return result


@dataclass
class MembershipInferenceOptions:
    """The options of `MembershipInference` (`--attack-args`)."""

    k: float = option(0.2, minimum=0.0, maximum=1.0, help="fraction of tokens for Min-K% and Min-K%++")
    scores: list[str] | None = option(
        None, choices=ALL_SCORES, help="scores to compute (default: all but reference, which needs reference_model)")
    reference_model: str | None = option(None, help="path of the reference model (e.g. the retain model)")
    include_eos: bool = option(False, help="score an appended EOS too (open-unlearning's LOSS/Zlib)")
    keep_items: bool = option(True, help="keep per-sample scores in the report")


class MembershipInference(ConfiguredAttack):
    name = "mia"
    description = "Membership inference on forget vs holdout: LOSS, Zlib, Min-K%, Min-K%++, reference, GradNorm."
    Options = MembershipInferenceOptions

    def run(self, ctx: AttackContext) -> dict[str, Any]:
        config = self.settings(ctx.options)
        k = config["k"]
        if not 0 < k <= 1:
            raise AttackError(f"attack 'mia': option k={k} must be in (0, 1]")
        names = list(config["scores"] or DEFAULT_SCORES + (("reference",) if config["reference_model"] else ()))
        if "reference" in names and not config["reference_model"]:
            raise AttackError("attack 'mia': the reference score needs reference_model=PATH (e.g. the retain model)")
        sets, skipped = self._membership_sets(ctx)
        if "min_k_plus_plus" in names:  # the only score that reads the vocabulary-wide mean and variance
            sets = {name: _with_vocab_stats(membership) for name, membership in sets.items()}
        include_eos = config["include_eos"]
        per_task: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
        for task_name, membership in sets.items():
            results = ctx.answer(membership.members + membership.nonmembers)
            n = len(membership.members)
            member_texts, nonmember_texts = membership.texts()
            single_m = mia_scores.per_sample_scores(results[:n], member_texts, k, include_eos)
            single_h = mia_scores.per_sample_scores(results[n:], nonmember_texts, k, include_eos)
            per_task[task_name] = {s: (single_m[s], single_h[s]) for s in mia_scores.SINGLE_PASS_SCORES if s in names}
        if "reference" in names:
            self._add_reference(ctx, config["reference_model"], sets, per_task, include_eos)
        if "gradnorm" in names:
            model = require_torch_model(ctx, self.name)
            max_length = getattr(ctx.backend, "max_length", None)
            for task_name, membership in sets.items():
                values = gradient_norm_scores(
                    model, ctx.backend.tokenizer, membership.members + membership.nonmembers, include_eos, max_length,
                    progress=ctx.progress,
                )
                n = len(membership.members)
                per_task[task_name]["gradnorm"] = (values[:n], values[n:])
        tasks_section = {}
        for task_name, by_score in per_task.items():
            membership = sets[task_name]
            section: dict[str, Any] = {
                "membership": membership.description,
                "n_members": len(membership.members),
                "n_nonmembers": len(membership.nonmembers),
                "scores": {
                    score: score_section(m, h, reference_auc(ctx.reference, task_name, score))
                    for score, (m, h) in by_score.items()
                },
            }
            if config["keep_items"]:
                section["items"] = {score: {"members": m, "nonmembers": h} for score, (m, h) in by_score.items()}
            tasks_section[task_name] = section
        return {
            "convention": CONVENTION,
            "k": k,
            "include_eos": include_eos,
            "scores": names,
            "reference_model": config["reference_model"],
            "tasks": tasks_section,
            "skipped": skipped,
        }

    def _membership_sets(self, ctx: AttackContext) -> tuple[dict[str, attack_inputs.MembershipSet], dict[str, str]]:
        sets: dict[str, attack_inputs.MembershipSet] = {}
        skipped: dict[str, str] = {}
        for task_name, task in ctx.tasks.items():
            support = attack_inputs.membership_set(task, ctx.contexts[task_name])
            membership = support.value
            if membership is None:
                skipped[task_name] = support.reason or "no membership data"
            elif not membership.members or not membership.nonmembers:
                skipped[task_name] = "empty member or non-member set"
            else:
                sets[task_name] = membership
        if not sets:
            reasons = "; ".join(skipped.values()) or "no tasks"
            raise AttackError(
                "attack 'mia' needs member and non-member texts (a task with membership_requests(ctx), or "
                f"unlearning_data(ctx) with forget and holdout examples): {reasons}"
            )
        return sets, skipped

    def _add_reference(self, ctx: AttackContext, path: str, sets: dict[str, attack_inputs.MembershipSet],
                       per_task: dict[str, dict], include_eos: bool) -> None:
        backend = load_backend(path, ctx, self.name, "reference")
        try:
            for task_name, membership in sets.items():
                requests = membership.members + membership.nonmembers
                own = ctx.answer(requests)
                theirs = answer_on(backend, requests)
                values = [mia_scores.reference_score(score_of(a), score_of(b), include_eos)
                          for a, b in zip(own, theirs)]
                n = len(membership.members)
                per_task[task_name]["reference"] = (values[:n], values[n:])
        finally:
            backend.close()
            del backend
            free_memory()


def _with_vocab_stats(membership: attack_inputs.MembershipSet) -> attack_inputs.MembershipSet:
    """The same sets, every request asking for the mean and variance of log p (Min-K%++)."""
    return replace(membership, members=[replace(r, vocab_stats=True) for r in membership.members],
                   nonmembers=[replace(r, vocab_stats=True) for r in membership.nonmembers])
