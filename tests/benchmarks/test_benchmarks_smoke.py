"""Smoke test of the `benchmarks/` scripts in toy mode (tiny model, a few dozen items, CPU, float32).

Timings are not asserted: on a CPU they say nothing about a GPU. What is asserted: each script runs
through its `main`, writes its JSON with the expected keys, and the fast path gives the same metric
values as the baseline (per-item NLLs, argmax flags, generations, accuracies): a correctness check.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # `benchmarks` is importable from it (pytest's pythonpath setting)

COMMON_KEYS = {"benchmark", "schema_version", "toy", "environment", "model", "targets", "fast", "baseline",
               "ratios", "agreement"}
ENVIRONMENT_KEYS = {"device", "device_name", "peak_bf16_flops", "dtype", "torch", "transformers", "mu_eval"}
SCRIPTS = {
    "bench_scoring": {"fast": {"tokens_per_second", "mfu", "tokens", "seconds"},
                      "baseline": {"processed_tokens_per_second", "mfu", "seconds"},
                      "ratios": {"speedup_wall"}},
    "bench_generation": {"fast": {"new_tokens_per_second", "new_tokens", "seconds"},
                         "baseline": {"new_tokens_per_second", "new_tokens", "seconds"},
                         "ratios": {"speedup_wall", "new_tokens_per_second"}},
    "bench_tofu_e2e": {"fast": {"seconds", "path"}, "baseline": {"seconds", "counters"},
                       "ratios": {"speedup_task", "speedup_mirror"}},
    "bench_multiple_choice": {"fast": {"seconds", "accuracy", "single_pass"}, "baseline": {"seconds", "accuracy"},
                              "ratios": {"speedup_vs_baseline", "speedup_vs_engine_score4"}},
}


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[int, dict]]:
    """Each script's exit status and JSON, run once through its `main` and shared by the tests below."""
    return {}


def run_script(name: str, results: dict[str, tuple[int, dict]], tmp: pytest.TempPathFactory) -> tuple[int, dict]:
    if name not in results:
        module = importlib.import_module(f"benchmarks.{name}")
        folder = tmp.mktemp(name)
        output = folder / f"{name}.json"
        # one timed run per path keeps CI fast; the multiple-choice script runs the defaults (3 interleaved
        # runs of every path, baselines at 32 and 256 rows)
        quick = [] if name == "bench_multiple_choice" else ["--repeats", "1", "--baseline-batch-size", "32"]
        status = module.main(["--toy", "--device", "cpu", "--output", str(output), "--work-dir", str(folder), *quick])
        results[name] = (status, json.loads(output.read_text(encoding="utf-8")))
    return results[name]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_runs_in_toy_mode_and_paths_agree(name: str, results: dict, tmp_path_factory) -> None:
    status, data = run_script(name, results, tmp_path_factory)
    assert COMMON_KEYS <= set(data), COMMON_KEYS - set(data)
    assert ENVIRONMENT_KEYS <= set(data["environment"])
    assert data["toy"] is True and data["environment"]["dtype"] == "float32"
    assert data["environment"]["peak_bf16_flops"] is None  # a CPU has no entry in the peak table
    for section, keys in SCRIPTS[name].items():
        assert keys <= set(data[section]), (section, keys - set(data[section]))
    assert data["fast"]["seconds"] > 0 and data["baseline"]["seconds"] > 0
    assert data["agreement"]["agree"] is True, json.dumps(data["agreement"], indent=1)[:3000]
    assert status == 0


def test_scoring_items_and_metrics_match(results: dict, tmp_path_factory) -> None:
    _, data = run_script("bench_scoring", results, tmp_path_factory)
    agreement = data["agreement"]
    assert agreement["max_item_nll_diff"] < 1e-4
    assert agreement["greedy_flag_agreement"] == 1.0
    expected = {"forget_prob", "forget_truth_ratio", "forget_extraction_strength", "forget_exact_memorization",
                "retain_prob", "real_authors_prob", "world_facts_truth_ratio", "mia_min_k_auc"}
    assert expected <= set(agreement["metrics"])
    for name, row in agreement["metrics"].items():
        assert row["agree"] and math.isclose(row["fast"], row["baseline"], rel_tol=1e-4, abs_tol=1e-6), name
    # open-unlearning's sweeps: 5 forget, 3 retain, 2 per RA/WF (their answers come from its metric cache),
    # 1 holdout
    assert data["baseline"]["sweeps"] == 13
    sweeps = data["baseline"]["by_sweep"]
    assert not any("truth-ratio base" in name for name in sweeps if name.startswith(("real", "world")))
    assert data["baseline"]["processed_tokens"] > data["fast"]["tokens"]


def test_end_to_end_metric_values_are_identical(results: dict, tmp_path_factory) -> None:
    _, data = run_script("bench_tofu_e2e", results, tmp_path_factory)
    baseline, mirror = data["metrics"]["baseline"], data["metrics"]["mirror"]
    assert set(baseline) == set(mirror) and "model_utility" in baseline
    for name, value in baseline.items():
        assert math.isclose(value, mirror[name], rel_tol=1e-4, abs_tol=1e-6), (name, value, mirror[name])
    assert data["agreement"]["mirror_vs_baseline"]["identical_generations"] == 1.0
    assert any(baseline[f"{s}_rougeL_recall"] > 0 for s in ("forget", "retain", "real_authors", "world_facts"))
    if data["task"]["available"]:  # the registered tofu_forget10 task through mu_eval.evaluate
        task = data["metrics"]["task"]
        for name, value in baseline.items():
            assert math.isclose(value, task[name], rel_tol=1e-4, abs_tol=1e-6), (name, value, task[name])
    else:
        assert data["task"]["reason"] and data["ratios"]["speedup_task"] is None


def test_multiple_choice_accuracies_are_identical(results: dict, tmp_path_factory) -> None:
    _, data = run_script("bench_multiple_choice", results, tmp_path_factory)
    assert data["fast"]["single_pass"] == 1.0  # " A".." D" are single tokens: one forward per question
    assert data["fast"]["accuracy"] == data["baseline"]["accuracy"] == data["engine_score4"]["accuracy"]
    assert data["agreement"]["same_choice"] == 1.0 and data["agreement"]["max_logprob_diff"] < 1e-4


def test_results_table_reads_the_four_files(results: dict, tmp_path_factory, capsys) -> None:
    """The docs' table comes from the JSON files, figure for figure; toy files are flagged, not passed off."""
    from benchmarks import results_table

    folder = tmp_path_factory.mktemp("all-results")
    files = {name: run_script(name, results, tmp_path_factory)[1] for name in SCRIPTS}
    for name, data in files.items():
        (folder / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    status = results_table.main(["--results-dir", str(folder)])
    out, err = capsys.readouterr()
    assert status == 1 and "toy-size run" in err  # toy files must not fill the GPU table
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| ")}
    generation = files["bench_generation"]
    assert f"{generation['fast']['new_tokens_per_second']:,.0f} new tok/s" in rows["generation new tokens/s"]
    assert f"{generation['ratios']['speedup_wall']:.2f}x" in rows["generation new tokens/s"]
    e2e = files["bench_tofu_e2e"]
    assert f"| {e2e['baseline']['seconds']:.1f} s |" in rows["full TOFU forget10 eval, seconds"]
    speedup = files["bench_multiple_choice"]["ratios"]["speedup_vs_baseline"]
    verdict = "met" if speedup >= 3 else "NOT met"
    assert f"ratios.speedup_vs_baseline = {speedup:.4g} (target >= 3" in out
    assert out.split(f"ratios.speedup_vs_baseline = {speedup:.4g}")[1].splitlines()[0].endswith(f": {verdict}")
    assert "fast.mfu = None" in out and "not judged" in out  # no peak on a CPU: MFU cannot be judged
    (folder / "bench_scoring.json").unlink()
    assert results_table.main(["--results-dir", str(folder)]) == 1
    assert "missing in" in capsys.readouterr().err


def test_every_path_is_timed_three_times_interleaved_and_the_median_reported(results, tmp_path_factory) -> None:
    _, data = run_script("bench_multiple_choice", results, tmp_path_factory)
    assert data["repeats"] == 3
    by_size = data["baseline"]["by_batch_size"]
    assert set(by_size) == {"32", "256"} and data["baseline"]["batch_size"] in (32, 256)
    for timing in [data["fast"], data["engine_score4"], *by_size.values()]:
        assert len(timing["runs"]) == 3
    for timing in by_size.values():
        assert timing["median"] == sorted(timing["runs"])[1]
    assert data["fast"]["seconds"] == sorted(data["fast"]["runs"])[1]
    best = by_size[str(data["baseline"]["batch_size"])]["median"]
    assert data["baseline"]["seconds"] == best == min(t["median"] for t in by_size.values())
    assert data["ratios"]["speedup_vs_baseline"] == pytest.approx(best / data["fast"]["seconds"])


def test_interleaving_rotates_the_order_of_the_paths() -> None:
    from benchmarks.common import interleaved

    order: list[str] = []
    values, timing = interleaved({name: (lambda name=name: order.append(name) or name) for name in "abc"}, 3, "cpu")
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert values == {"a": "a", "b": "b", "c": "c"} and all(len(t["runs"]) == 3 for t in timing.values())


def test_results_table_refuses_limit_runs_and_single_runs(results, tmp_path_factory, capsys) -> None:
    from benchmarks import results_table

    folder = tmp_path_factory.mktemp("not-toy")
    files = {name: run_script(name, results, tmp_path_factory)[1] for name in SCRIPTS}
    for name, data in files.items():  # stand-ins for full-size runs: only the flags the table judges differ
        (folder / f"{name}.json").write_text(json.dumps({**data, "toy": False, "repeats": 3}), encoding="utf-8")
    assert results_table.main(["--results-dir", str(folder)]) == 0
    capsys.readouterr()
    limited = {**files["bench_scoring"], "toy": False, "repeats": 3, "limit": 8}
    (folder / "bench_scoring.json").write_text(json.dumps(limited), encoding="utf-8")
    assert results_table.main(["--results-dir", str(folder)]) == 1
    assert "bench_scoring: a --limit 8 run" in capsys.readouterr().err
    once = {**files["bench_scoring"], "toy": False, "repeats": 1}
    (folder / "bench_scoring.json").write_text(json.dumps(once), encoding="utf-8")
    assert results_table.main(["--results-dir", str(folder)]) == 1
    assert "1 timed run(s) per path, fewer than 3" in capsys.readouterr().err


def test_default_outputs_are_the_files_results_table_reads() -> None:
    from benchmarks.common import RESULTS_DIR, parse_args
    from benchmarks.results_table import FILES

    for name in FILES:
        short = name.removeprefix("bench_")
        assert f'script_main("{short}",' in (ROOT / "benchmarks" / f"{name}.py").read_text(encoding="utf-8")
        assert parse_args("", ["--toy"], short).output == RESULTS_DIR / f"{name}.json"
