"""Golden values: the published TOFU Llama-2 logs (tests/data/tofu/golden-logs) through mu-eval's own aggregations.

The per-item losses and ROUGE scores of the logs go into the same functions the TOFU task feeds with its
`Score` answers, so these numbers pin the task's arithmetic, not a copy of it.
"""

from __future__ import annotations

import json
import math

import pytest

from mu_eval.metrics.rouge import rouge_scores, rougeL_recall
from mu_eval.report import load_report, write_report
from mu_eval.tasks.tofu import metrics as M
from mu_eval.tasks.tofu import results as R

FILES = {
    "retain": "eval_log.json",
    "forget": "eval_log_forget.json",
    "real_authors": "eval_real_author_wo_options.json",
    "world_facts": "eval_real_world_wo_options.json",
}
MODELS = ("full", "retain90")

# per set and model: (Prob, ROUGE-L recall, truth ratio), computed independently from the logs
EXPECTED = {
    ("full", "retain"): (0.989527, 0.985655, 0.474699),
    ("full", "real_authors"): (0.455482, 0.933000, 0.596229),
    ("full", "world_facts"): (0.418562, 0.882479, 0.539033),
    ("full", "forget"): (0.990939, 0.985450, 0.515985),
    ("retain90", "retain"): (0.988897, 0.975811, 0.470977),
    ("retain90", "real_authors"): (0.434087, 0.923000, 0.570681),
    ("retain90", "world_facts"): (0.414326, 0.897436, 0.544198),
    ("retain90", "forget"): (0.147563, 0.408244, 0.674019),
}
EXPECTED_MU = {"full": 0.622677, "retain90": 0.613745}
EXPECTED_FQ = 1.834066e-21
EXPECTED_D = 0.396667
ABS = 1e-4
REL_FQ = 1e-3


def relatively_close(value: float, expected: float, rel: float) -> bool:
    """`pytest.approx` adds an absolute 1e-12 that would accept any p-value of 1e-21; this does not."""
    return math.isclose(value, expected, rel_tol=rel, abs_tol=0.0)


def read_log(benchmark_data, model: str, role: str) -> dict[str, list]:
    """`{field: [value of item 0, 1, ...]}` in numeric key order ("10" sorts before "2" as a string)."""
    path = benchmark_data / "tofu" / "golden-logs" / f"llama2-7b_{model}" / FILES[role]
    data = json.loads(path.read_text())
    count = len(data["avg_gt_loss"])
    return {name: [values[str(i)] for i in range(count)] for name, values in data.items()}


@pytest.fixture(scope="module")
def logs(benchmark_data):
    return {(model, role): read_log(benchmark_data, model, role) for model in MODELS for role in FILES}


def components(log: dict, role: str, mean: M.PerturbationMean = "geometric") -> tuple[float, float, float]:
    """Prob, ROUGE and truth ratio of one set exactly as the task aggregates its per-item values."""
    s = M.truth_ratio_statistics(log["avg_paraphrased_loss"], log["average_perturb_loss"], mean)
    if role in R.NORMALISED_SETS:
        prob = M.mean(M.normalised_probabilities(log["avg_gt_loss"], log["average_perturb_loss"]))
    else:
        prob = M.mean_probability(log["avg_gt_loss"])
    truth = M.forget_truth_ratio(s) if role == "forget" else M.utility_truth_ratio(s)
    return prob, M.mean(log["rougeL_recall"]), truth


def utility(logs, model: str, mean: M.PerturbationMean = "geometric") -> float:
    return M.model_utility([v for role in R.UTILITY_SETS for v in components(logs[model, role], role, mean)])


def forget_s(logs, model: str, mean: M.PerturbationMean = "geometric"):
    log = logs[model, "forget"]
    return M.truth_ratio_statistics(log["avg_paraphrased_loss"], log["average_perturb_loss"], mean)


@pytest.mark.parametrize(("model", "role"), list(EXPECTED))
def test_components(logs, model, role):
    got = components(logs[model, role], role)
    assert got == pytest.approx(EXPECTED[model, role], abs=ABS)


@pytest.mark.parametrize("model", MODELS)
def test_model_utility(logs, model):
    assert utility(logs, model) == pytest.approx(EXPECTED_MU[model], abs=ABS)


def test_forget_quality(logs):
    statistic, pvalue = M.ks_test(forget_s(logs, "full"), forget_s(logs, "retain90"))
    assert relatively_close(pvalue, EXPECTED_FQ, REL_FQ)
    assert statistic == pytest.approx(EXPECTED_D, abs=1e-6)
    assert M.forget_quality(forget_s(logs, "full"), forget_s(logs, "retain90")) == pvalue


def test_item_spot_checks(logs):
    assert forget_s(logs, "full")[0] == pytest.approx(4.077743, rel=1e-6)
    assert forget_s(logs, "retain90")[0] == pytest.approx(0.710218, rel=1e-6)
    retain = logs["full", "retain"]
    s = M.truth_ratio_statistics(retain["avg_paraphrased_loss"], retain["average_perturb_loss"])
    assert s[0] == pytest.approx(1.200812, rel=1e-6)
    authors = logs["full", "real_authors"]
    assert M.normalised_probabilities(authors["avg_gt_loss"], authors["average_perturb_loss"])[0] == pytest.approx(
        0.304911, abs=1e-6
    )


# -- what a wrong implementation produces ---------------------------------------------------------------------
def test_arithmetic_mean_of_perturbations_gives_the_wrong_numbers(logs):
    assert utility(logs, "full", "arithmetic") == pytest.approx(0.5859, abs=ABS)
    assert utility(logs, "retain90", "arithmetic") == pytest.approx(0.5752, abs=ABS)
    assert M.forget_truth_ratio(forget_s(logs, "full", "arithmetic")) == pytest.approx(0.5304, abs=ABS)
    fq = M.forget_quality(forget_s(logs, "full", "arithmetic"), forget_s(logs, "retain90", "arithmetic"))
    assert relatively_close(fq, 6.03e-23, 1e-2)
    assert abs(utility(logs, "full", "arithmetic") - EXPECTED_MU["full"]) > 0.03


def test_asymptotic_ks_differs(logs):
    fq = M.forget_quality(forget_s(logs, "full"), forget_s(logs, "retain90"), method="asymp")
    assert relatively_close(fq, 8.50e-22, 1e-2)
    assert not relatively_close(fq, EXPECTED_FQ, 0.1)


def test_prob_mean_aggregator_is_another_metric(logs):
    assert M.prob_mean_truth_ratio(forget_s(logs, "full")) == pytest.approx(0.6611, abs=ABS)
    assert M.prob_mean_truth_ratio(forget_s(logs, "retain90")) == pytest.approx(0.5543, abs=ABS)


def test_first_200_items_change_forget_quality(logs):
    fq = M.forget_quality(forget_s(logs, "full")[:200], forget_s(logs, "retain90")[:200])
    assert relatively_close(fq, 4.73e-15, 1e-2)


def test_stored_truth_ratio_is_the_inverse_of_s(logs):
    """Using the logs' `truth_ratio` field (1/s) as s wrecks MU, but not the symmetric forget truth ratio."""
    wrong = []
    for role in R.UTILITY_SETS:
        log = logs["full", role]
        prob, rouge, _ = components(log, role)
        wrong += [prob, rouge, M.utility_truth_ratio(log["truth_ratio"])]
    assert M.model_utility(wrong) == pytest.approx(0.0716, abs=ABS)
    stored = logs["full", "forget"]["truth_ratio"]
    assert M.forget_truth_ratio(stored) == pytest.approx(EXPECTED["full", "forget"][2], abs=ABS)


# -- field invariants and cross-checks --------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("role", list(FILES))
def test_field_invariants(logs, model, role):
    log = logs[model, role]
    s = M.truth_ratio_statistics(log["avg_paraphrased_loss"], log["average_perturb_loss"])
    for i in range(len(log["avg_gt_loss"])):
        assert log["gt_loss"][i] / log["num_token_gt"][i] == pytest.approx(log["avg_gt_loss"][i], rel=1e-5)
        for loss, count, average in zip(log["perturb_loss"][i], log["num_token_perturb"][i],
                                        log["average_perturb_loss"][i]):
            assert loss / count == pytest.approx(average, rel=1e-5)
        assert log["truth_ratio"][i] == pytest.approx(1 / s[i], rel=1e-4)
    if role in R.NORMALISED_SETS:
        normalised = M.normalised_probabilities(log["avg_gt_loss"], log["average_perturb_loss"])
        assert [-math.log(p) for p in normalised] == pytest.approx(log["normalized_gt_loss"], rel=1e-5)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("role", list(FILES))
def test_rouge_recomputed_from_generations(logs, model, role):
    log = logs[model, role]
    recomputed = [rougeL_recall(gold, generation) for _, generation, gold in log["generated_text"]]
    assert recomputed == pytest.approx(log["rougeL_recall"], abs=1e-9)
    rouge1 = [rouge_scores(gold, gen, ("rouge1",))["rouge1"].recall for _, gen, gold in log["generated_text"]]
    assert rouge1 == pytest.approx(log["rouge1_recall"], abs=1e-9)


def test_rouge_without_stemming_would_differ(logs):
    log = logs["full", "world_facts"]
    unstemmed = [rougeL_recall(gold, gen, stemmer=False) for _, gen, gold in log["generated_text"]]
    assert max(abs(a - b) for a, b in zip(unstemmed, log["rougeL_recall"])) > 0.1


@pytest.mark.parametrize(("role", "name"), [("real_authors", "real_authors_perturbed.json"),
                                            ("world_facts", "world_facts_perturbed.json")])
def test_data_files_match_the_logs(logs, benchmark_data, role, name):
    rows = [json.loads(line) for line in (benchmark_data / "tofu" / name).read_text().splitlines() if line.strip()]
    log = logs["full", role]
    assert len(rows) == len(log["generated_text"])
    for row, (prompt, _, gold) in zip(rows, log["generated_text"]):
        assert prompt == "[INST] " + row["question"] + " [/INST]"
        assert gold == row["answer"]
        assert len(row["perturbed_answer"]) == 3


# -- FQ properties and the reference round trip ---------------------------------------------------------------
def test_forget_quality_symmetry_and_identity(logs):
    full, retain = forget_s(logs, "full"), forget_s(logs, "retain90")
    fq = M.forget_quality(full, retain)
    assert relatively_close(M.forget_quality(1 / full, 1 / retain), fq, 1e-9)
    assert relatively_close(M.forget_quality(retain, full), fq, 1e-9)
    assert M.forget_quality(retain, retain) == 1.0


def minimal_report(task_name: str, items: dict[str, list[float]], info: dict) -> dict:
    """The smallest valid report holding one task's per-item arrays, as a retain model's run would write."""
    return {
        "schema_version": 1, "mu_eval_version": "test", "created": "2024-01-01T00:00:00+00:00",
        "config": {}, "timings": {}, "versions": {},
        "model": {"model": "llama2-7b_retain90", "revision": None, "weights_sha256": None, "dtype": "bfloat16",
                  "adapter": None, "backend": "published-logs"},
        "tasks": {task_name: {"config": {}, "metrics": {}, "items": items, "info": info}},
    }


def test_reference_report_round_trip(logs, tmp_path):
    """retain90's per-item s written as a report and read back as --reference gives the same FQ via the task code."""
    task_name = "tofu_forget10"
    reference_items = {"forget_truth_ratio_s": [float(v) for v in forget_s(logs, "retain90")]}
    write_report(minimal_report(task_name, reference_items, {}), tmp_path)
    reference = load_report(tmp_path).data
    model_items = {"forget_truth_ratio_s": [float(v) for v in forget_s(logs, "full")],
                   "forget_min_k": [], "holdout_min_k": []}
    values = R.reference_metrics(task_name, model_items, {}, reference)
    assert relatively_close(values["forget_quality"].value, EXPECTED_FQ, REL_FQ)
    assert values["forget_quality"].n == 300
    assert values["privleak"].value is None and "forget_min_k" in values["privleak"].reason
    missing = R.reference_metrics(task_name, model_items, {}, None)["forget_quality"]
    assert missing.value is None and "no reference" in missing.reason
    other = R.reference_metrics("tofu_forget05", model_items, {}, reference)["forget_quality"]
    assert other.value is None and "tofu_forget05" in other.reason
    shorter = {**model_items, "forget_truth_ratio_s": model_items["forget_truth_ratio_s"][:200]}
    mismatch = R.reference_metrics(task_name, shorter, {}, reference)["forget_quality"]
    assert mismatch.value is None and "300 items" in mismatch.reason
