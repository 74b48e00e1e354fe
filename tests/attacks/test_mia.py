"""Membership inference on a tiny model fine-tuned on the member facts (holdout facts never seen)."""

from __future__ import annotations

import math

import pytest
import torch
from attack_support import HOLDOUT, MEMBERS, AttackQATask, NoDataTask, examples

import mu_eval
from mu_eval.attack import AttackError
from mu_eval.attacks.gradnorm import gradient_norm_scores
from mu_eval.backends.hf_encoding import encode_score
from mu_eval.metrics.mia import privleak
from mu_eval.requests import Score
from mu_eval.training import collate, nll_loss


def members_vs_holdout(**options) -> AttackQATask:
    return AttackQATask(forget=MEMBERS, retain=[], holdout=HOLDOUT, **options)


def pairwise_auc(members, nonmembers) -> float:
    """AUC by counting pairs: P(member > non-member) + ties / 2 (members positive)."""
    wins = sum((m > h) + 0.5 * (m == h) for m in members for h in nonmembers)
    return wins / (len(members) * len(nonmembers))


def independent_nll(model, tokenizer, prompt: str, answer: str) -> float:
    batch = collate([encode_score(tokenizer, prompt, answer, False, None)])
    with torch.no_grad():
        return float(nll_loss(model, batch))


def test_trained_members_score_above_holdout(trained, tiny_checkpoint):
    model, tokenizer = trained
    report = mu_eval.evaluate(
        (model, tokenizer), [members_vs_holdout()], attacks=["mia"],
        attack_options={"mia": {"reference_model": str(tiny_checkpoint)}}, progress=False,
    )
    section = report.data["attacks"]["mia"]
    task = section["tasks"]["attack_test_qa"]
    assert task["n_members"] == len(MEMBERS) and task["n_nonmembers"] == len(HOLDOUT)
    assert set(task["scores"]) == {"loss", "zlib", "min_k", "min_k_plus_plus", "gradnorm", "reference"}
    for name in ("loss", "min_k_plus_plus", "min_k", "zlib", "reference", "gradnorm"):
        assert task["scores"][name]["auc"] > 0.8, name
    for name, score in task["scores"].items():
        items = task["items"][name]
        assert score["auc"] == pytest.approx(pairwise_auc(items["members"], items["nonmembers"])), name
        assert score["privleak"] is None and "no reference report" in score["privleak_reason"]
    # the LOSS item is -NLL of the answer tokens without EOS, computed here without the engine
    prompt = examples(MEMBERS)[0].prompt
    expected = -independent_nll(model, tokenizer, prompt, MEMBERS[0][1])
    assert task["items"]["loss"]["members"][0] == pytest.approx(expected, abs=1e-4)
    assert section["convention"].startswith("members (forget set) are the positive class")


def test_orientation_flips_when_roles_swap(trained):
    # the holdout facts as "members" and the trained ones as "non-members": AUC falls below 0.5
    swapped = AttackQATask(forget=HOLDOUT, retain=[], holdout=MEMBERS)
    report = mu_eval.evaluate(trained, [swapped], attacks=["mia"],
                              attack_options={"mia": {"scores": "loss;min_k_plus_plus"}}, progress=False)
    scores = report.data["attacks"]["mia"]["tasks"]["attack_test_qa"]["scores"]
    assert set(scores) == {"loss", "min_k_plus_plus"}
    assert scores["loss"]["auc"] < 0.2 and scores["min_k_plus_plus"]["auc"] < 0.2


def test_privleak_against_a_reference_report(trained, tiny_checkpoint):
    options = {"mia": {"scores": "loss", "keep_items": "false"}}
    reference = mu_eval.evaluate(str(tiny_checkpoint), [members_vs_holdout()], attacks=["mia"],
                                 attack_options=options, progress=False, use_cache=False)
    report = mu_eval.evaluate(trained, [members_vs_holdout()], attacks=["mia"], attack_options=options,
                              reference=reference.data, progress=False)
    ref_auc = reference.data["attacks"]["mia"]["tasks"]["attack_test_qa"]["scores"]["loss"]["auc"]
    loss = report.data["attacks"]["mia"]["tasks"]["attack_test_qa"]["scores"]["loss"]
    assert "items" not in report.data["attacks"]["mia"]["tasks"]["attack_test_qa"]
    assert loss["reference_auc"] == ref_auc
    assert loss["privleak"] == pytest.approx((ref_auc - loss["auc"]) / (1 - ref_auc) * 100)
    assert loss["privleak"] == pytest.approx(privleak(loss["auc"], ref_auc))


@pytest.mark.parametrize("training", [True, False])
def test_gradient_norm_restores_the_model(trained, training):
    model, tokenizer = trained
    model.train(training)
    frozen = model.model.embed_tokens.weight
    frozen.requires_grad_(False)
    sentinel = torch.full_like(model.lm_head.weight, 0.5)
    model.lm_head.weight.grad = sentinel.clone()
    requests = [Score(e.prompt, e.answer, append_eos=True) for e in examples(MEMBERS + HOLDOUT)]
    scores = gradient_norm_scores(model, tokenizer, requests, progress=False)
    assert model.training is training
    assert frozen.requires_grad is False and frozen.grad is None
    assert torch.equal(model.lm_head.weight.grad, sentinel)
    assert all(p.grad is None for n, p in model.named_parameters() if n != "lm_head.weight")
    assert all(math.isfinite(s) and s < 0 for s in scores)
    # memorised members have smaller gradients (higher score) than unseen facts
    assert pairwise_auc(scores[: len(MEMBERS)], scores[len(MEMBERS) :]) > 0.8


def test_gradient_norm_is_computed_without_dropout(trained):
    model, tokenizer = trained
    for layer in model.model.layers:
        layer.self_attn.attention_dropout = 0.5  # dropout that train mode would switch on
    requests = [Score(e.prompt, e.answer) for e in examples(MEMBERS[:2])]
    in_eval = gradient_norm_scores(model.eval(), tokenizer, requests, progress=False)
    first = gradient_norm_scores(model.train(), tokenizer, requests, progress=False)
    second = gradient_norm_scores(model.train(), tokenizer, requests, progress=False)
    assert first == second == in_eval


def test_missing_membership_data_and_reference_are_errors(trained):
    with pytest.raises(AttackError, match="needs member and non-member texts.*neither membership_requests"):
        mu_eval.evaluate(trained, [NoDataTask()], attacks=["mia"], progress=False)
    with pytest.raises(AttackError, match="reference score needs reference_model"):
        mu_eval.evaluate(trained, [members_vs_holdout()], attacks=["mia"],
                         attack_options={"mia": {"scores": "reference"}}, progress=False)
    with pytest.raises(AttackError, match="cannot load the reference model"):
        mu_eval.evaluate(trained, [members_vs_holdout()], attacks=["mia"],
                         attack_options={"mia": {"reference_model": "/nonexistent/model"}}, progress=False)


def test_per_sample_scores_by_hand():
    import zlib

    from mu_eval.metrics.mia import per_sample_scores
    from mu_eval.requests import ScoreResult

    result = ScoreResult(logprobs=(-1.0, -3.0, -0.5, -2.0, -4.0), greedy=(True,) * 5,
                         expected_logprob=(-1.0, -2.0, -1.0, -1.0, -2.0), logprob_variance=(1.0, 4.0, 0.25, 1.0, 1e-9),
                         eos_appended=True)
    scores = per_sample_scores([result], ["some text"], k=0.5)
    nll = (1.0 + 3.0 + 0.5 + 2.0) / 4  # the appended EOS (-4.0) is left out
    assert scores["loss"] == [pytest.approx(-nll)]
    assert scores["zlib"] == [pytest.approx(-nll / len(zlib.compress(b"some text")))]
    assert scores["min_k"] == [pytest.approx((-3.0 - 2.0) / 2)]  # m = floor(0.5 * 4) = 2 smallest
    z = sorted([(-1.0 + 1.0) / 1.0, (-3.0 + 2.0) / 2.0, (-0.5 + 1.0) / 0.5, (-2.0 + 1.0) / 1.0])
    assert scores["min_k_plus_plus"] == [pytest.approx((z[0] + z[1]) / 2)]
    with pytest.raises(ValueError):
        per_sample_scores([result], [], k=0.5)


def test_min_k_is_the_same_for_a_fresh_and_a_cached_answer():
    """A fresh answer holds float32 log-probs, one read back from the cache holds Python floats: the score must
    not depend on which (a float32 mean differs from the float64 one in the sixth digit)."""
    import numpy as np

    from mu_eval.metrics.mia import min_k_score
    from mu_eval.requests import ScoreResult

    rng = np.random.default_rng(0)
    fresh = tuple(np.float32(value) for value in -rng.exponential(0.05, size=40))
    cached = tuple(float(value) for value in fresh)

    def answer(logprobs):
        return ScoreResult(logprobs=logprobs, greedy=(True,) * 40, expected_logprob=(math.nan,) * 40,
                           logprob_variance=(math.nan,) * 40)

    by_hand = sum(sorted(cached)[:8]) / 8  # m = floor(0.2 * 40) = 8, summed in Python's float64
    assert min_k_score(answer(fresh)) == pytest.approx(by_hand, rel=1e-12, abs=0)
    assert min_k_score(answer(cached)) == pytest.approx(by_hand, rel=1e-12, abs=0)
