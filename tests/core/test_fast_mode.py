"""The fast in-loop settings: a seeded subset of items shared by target and reference (forget quality and
privleak stay defined), a cap on generated tokens, and a scoring-only run whose generation metrics are null."""

from __future__ import annotations

import pytest
from scipy.stats import ks_2samp
from support import FACTS, TRAINING_TEXTS, QATask

import mu_eval
from mu_eval.task import TaskContext, TaskOptionError
from mu_eval.tiny import build_model, build_tokenizer

TASK = "synthetic_forget10"
OPTIONS = {TASK: {"people": 10, "mia_sets": "evaluated"}}  # forget10 of 10 people: 20 questions


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(TRAINING_TEXTS, vocab_size=600)


def run(model, tokenizer, **settings):
    return mu_eval.evaluate((model, tokenizer), [TASK], task_options=OPTIONS, progress=False, **settings)


def context(limit, subset_seed):
    return TaskContext(load=lambda spec: [], chat=str, uses_chat_template=False, limit=limit, subset_seed=subset_seed)


def test_seeded_subset_is_fixed_in_order_and_not_the_first_rows():
    rows = list(range(100))
    chosen = context(10, 3).limited(rows)
    assert chosen == context(10, 3).limited(rows) == sorted(chosen)
    assert len(set(chosen)) == 10 and chosen != rows[:10]
    assert context(10, 4).limited(rows) != chosen
    assert context(10, None).limited(rows) == rows[:10]
    assert context(200, 3).limited(rows) == rows


def test_subset_keeps_forget_quality_defined_against_a_reference_evaluated_alike(tokenizer):
    target = build_model(len(tokenizer), tokenizer=tokenizer, seed=1)
    retain = build_model(len(tokenizer), tokenizer=tokenizer, seed=2)
    fast = {"limit": 5, "subset_seed": 11, "generate": False}
    reference = run(retain, tokenizer, **fast)
    report = run(target, tokenizer, reference=reference.data, **fast)

    metrics = report.tasks[TASK]["metrics"]
    expected = ks_2samp(report.tasks[TASK]["items"]["forget_truth_ratio_s"],
                        reference.tasks[TASK]["items"]["forget_truth_ratio_s"]).pvalue
    assert metrics["forget_quality"]["value"] == pytest.approx(expected)
    assert metrics["forget_quality"]["n"] == 5
    assert metrics["privleak"]["value"] is not None
    assert report.data["config"]["subset"] == {"items_per_set": 5, "chosen": "seeded random", "seed": 11}

    elsewhere = run(target, tokenizer, reference=reference.data, limit=5, subset_seed=12, generate=False)
    quality = elsewhere.tasks[TASK]["metrics"]["forget_quality"]
    assert quality["value"] is None and "other items" in quality["reason"]


def test_scoring_only_sends_no_generation_and_nulls_only_generation_metrics(tokenizer):
    model = build_model(len(tokenizer), tokenizer=tokenizer)
    full = run(model, tokenizer, limit=3, max_new_tokens=2)
    scoring = run(model, tokenizer, limit=3, generate=False)

    assert "generate" not in scoring.data["engine"]["by_kind"] and full.data["engine"]["by_kind"]["generate"] > 0
    metrics, full_metrics = scoring.tasks[TASK]["metrics"], full.tasks[TASK]["metrics"]
    for name in ("forget_rougeL_recall", "retain_rougeL_recall", "model_utility"):
        assert metrics[name]["value"] is None and "scoring-only" in metrics[name]["reason"]
        assert full_metrics[name]["value"] is not None
    assert set(scoring.tasks[TASK]["items"]["forget_rougeL_recall"]) == {None}
    for name in ("forget_prob", "retain_truth_ratio", "forget_extraction_strength", "mia_min_k_auc"):
        assert metrics[name]["value"] == full_metrics[name]["value"]
    assert scoring.data["config"]["generation"] == {"generate": False, "max_new_tokens": None}
    assert scoring.data["config"]["subset"] == {"items_per_set": 3, "chosen": "first", "seed": None}
    share = run(model, tokenizer, limit=0.1, subset_seed=2, generate=False)
    assert share.data["config"]["subset"] == {"share_per_set": 0.1, "chosen": "seeded random", "seed": 2}
    assert share.tasks[TASK]["metrics"]["forget_prob"]["n"] == 2  # a tenth of 20 questions


def test_generation_cap_shortens_every_generation(tokenizer):
    model = build_model(len(tokenizer), tokenizer=tokenizer)
    seen = []

    class Recording(QATask):
        def process_results(self, results, ctx):
            seen.extend(r.num_new_tokens for r in results if isinstance(r, mu_eval.GenerateResult))
            return super().process_results(results, ctx)

    report = mu_eval.evaluate((model, tokenizer), [Recording()], max_new_tokens=3, progress=False)
    assert len(seen) == len(FACTS)  # one per question
    assert max(seen) <= 3 < 8  # the task asks for 8
    assert report.data["config"]["generation"]["max_new_tokens"] == 3


def test_a_task_that_does_not_say_which_metrics_generate_is_refused_scoring_only(tokenizer):
    model = build_model(len(tokenizer), tokenizer=tokenizer)
    with pytest.raises(TaskOptionError, match="support_qa.*generation_metrics"):
        mu_eval.evaluate((model, tokenizer), [QATask()], generate=False, progress=False)


@pytest.mark.parametrize(("settings", "message"), [
    ({"subset_seed": 1}, "give limit too"),
    ({"limit": 2, "subset_seed": "a"}, "subset_seed must be"),
    ({"max_new_tokens": 0}, "max_new_tokens must be"),
    ({"generate": "no"}, "generate must be"),
])
def test_bad_fast_settings_are_refused_before_loading(settings, message):
    with pytest.raises(ValueError, match=message):
        mu_eval.evaluate("./no-such-model", [TASK], **settings)
