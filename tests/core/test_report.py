"""Report schema, atomic writes and reading reports back."""

from __future__ import annotations

import copy
import json

import pytest

from mu_eval.report import ReportError, load_report, validate_report, write_report
from mu_eval.report_builder import build_report
from mu_eval.task import MetricValue, Task, TaskResult


class NamedTask(Task):
    name = "named"


def sample_report() -> dict:
    result = TaskResult(
        metrics={
            "accuracy": MetricValue(0.5, 4, True, stderr=0.25),
            "forget_quality": MetricValue.missing(
                "no reference report given (--reference)", n=4, higher_is_better=True
            ),
        },
        items={"score": [0.1, float("nan"), 0.3, 0.4]},
    )
    return build_report(
        config={"tasks": ["named"]},
        identity={"model": "m", "revision": None, "weights_sha256": "abc", "dtype": "float32", "adapter": None,
                  "backend": "hf"},
        tasks={"named": NamedTask()},
        results={"named": result},
        timings={"total": 1.0},
    )


def test_round_trip_and_nan_items_become_null(tmp_path):
    data = sample_report()
    path = write_report(data, tmp_path)
    loaded = load_report(path)
    assert loaded.metric("named", "accuracy") == 0.5
    assert loaded.items("named")["score"] == [0.1, None, 0.3, 0.4]
    assert loaded.tasks["named"]["metrics"]["forget_quality"]["reason"].startswith("no reference")
    assert loaded["versions"]["torch"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("model"), "missing 'model'"),
        (lambda d: d.__setitem__("schema_version", 99), "not supported"),
        (lambda d: d["tasks"]["named"]["metrics"]["accuracy"].pop("n"), "accuracy: missing 'n'"),
        (lambda d: d["tasks"]["named"]["metrics"]["forget_quality"].pop("reason"), "needs a reason"),
        (lambda d: d["tasks"]["named"]["metrics"]["accuracy"].__setitem__("value", "high"), "expected a number"),
        (lambda d: d["model"].pop("dtype"), "report.model: missing 'dtype'"),
    ],
)
def test_validation_names_the_place(mutate, message):
    data = copy.deepcopy(sample_report())
    mutate(data)
    with pytest.raises(ReportError, match=message):
        validate_report(data)


def test_a_failed_write_leaves_the_old_report(tmp_path):
    good = sample_report()
    path = write_report(good, tmp_path)
    bad = copy.deepcopy(good)
    bad["timings"]["total"] = float("nan")  # not representable in JSON: the dump fails half-way
    with pytest.raises(ValueError):
        write_report(bad, tmp_path)
    assert json.loads(path.read_text()) == good
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_load_report_errors_are_clear(tmp_path):
    with pytest.raises(ReportError, match="not found"):
        load_report(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ReportError, match="not valid JSON"):
        load_report(tmp_path / "broken.json")
