"""`mu-eval compare`, `mu-eval plot`, `Report.to_frame()` and the console summary, on real reports of tiny
runs: a reference model, a target scored against it, and the reference model scored against itself."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

import pytest

from mu_eval.cli import main
from mu_eval.report import load_report
from mu_eval.report.compare import load_runs, report_files
from mu_eval.report.console import summary
from mu_eval.report.plot import VIEWS, draw, points

TASKS = "synthetic_forget01,support_qa"


@pytest.fixture(scope="module")
def runs(tiny_checkpoint, other_tiny_checkpoint, tmp_path_factory) -> Path:
    from support import register_support_task

    register_support_task()
    root = tmp_path_factory.mktemp("runs")
    common = ["--tasks", TASKS, "--limit", "4", "--quiet"]
    assert main(["--model", str(tiny_checkpoint), *common, "-o", str(root / "ref")]) == 0
    reference = ["--reference", str(root / "ref" / "report.json")]
    assert main(["--model", str(other_tiny_checkpoint), *common, *reference, "-o", str(root / "target"),
                 "--attacks", "mia", "--attack-args", "scores=loss"]) == 0
    with pytest.warns(Warning, match="same sha256"):  # on purpose: forget quality of a model against itself
        assert main(["--model", str(tiny_checkpoint), *common, *reference, "-o", str(root / "self")]) == 0
    return root


def metric(root: Path, run: str, task: str, name: str) -> dict:
    return json.loads((root / run / "report.json").read_text())["tasks"][task]["metrics"][name]


def test_compare_a_folder_tabulates_every_run_with_standard_errors(runs, capsys):
    capsys.readouterr()
    assert main(["compare", str(runs), "--metrics", "support_qa/probability,forget_quality"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["task", "metric", "better", "ref", "self", "target"]
    probability = next(line for line in lines if "probability" in line)
    for run in ("ref", "self", "target"):
        found = metric(runs, run, "support_qa", "probability")
        assert f"{found['value']:.4g} ± {found['stderr']:.4g}" in probability
    quality = next(line for line in lines if "forget_quality" in line).split()
    target, itself = (metric(runs, run, "synthetic_forget01", "forget_quality")["value"] for run in ("target", "self"))
    assert quality[3:] == ["null", f"{itself:.4g}", f"{target:.4g}"]  # the reference has none of its own
    assert itself == pytest.approx(1.0)  # the same weights as the reference: identical distributions


def test_compare_csv_round_trips_every_value_and_names_the_null_reason(runs, capsys):
    capsys.readouterr()
    assert main(["compare", str(runs / "ref"), str(runs / "target"), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    reports = {run: json.loads((runs / run / "report.json").read_text()) for run in ("ref", "target")}
    expected = sum(len(section["metrics"]) for report in reports.values() for section in report["tasks"].values())
    assert len(rows) == expected
    for row in rows:
        found = reports[row["run"]]["tasks"][row["task"]]["metrics"][row["metric"]]
        if found["value"] is None:
            assert row["value"] == "" and row["reason"] == found["reason"]
        else:
            assert float(row["value"]) == found["value"]  # full precision, not the table's 4 digits
        assert row["stderr"] == ("" if found.get("stderr") is None else repr(found["stderr"]))


def test_compare_markdown_and_latex(runs, capsys):
    capsys.readouterr()
    args = ["compare", str(runs / "target"), str(runs / "self"), "--metrics", "probability", "--labels", "NPO,x_1"]
    assert main([*args, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out.splitlines()
    assert markdown[0] == "| task | metric | better | NPO | x_1 |" and markdown[1] == "|---|---|---|---:|---:|"
    found = metric(runs, "target", "support_qa", "probability")
    cell = f"{found['value']:.4g} ± {found['stderr']:.4g}"
    assert markdown[2].startswith(f"| support_qa | probability | higher | {cell} |")
    assert main([*args, "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert r"task & metric & NPO & x\_1 \\" in latex and r"\toprule" in latex
    assert rf"support\_qa & probability $\uparrow$ & ${found['value']:.4g} \pm {found['stderr']:.4g}$" in latex


def test_a_folder_lists_earlier_reports_before_the_newest(runs, tmp_path):
    folder = tmp_path / "again"
    folder.mkdir()
    shutil.copy(runs / "ref" / "report.json", folder / "report_2026-01-02T03-04-05.json")
    shutil.copy(runs / "target" / "report.json", folder / "report.json")
    assert [p.name for p in report_files(folder)] == ["report_2026-01-02T03-04-05.json", "report.json"]
    assert [run.label for run in load_runs([folder])] == ["again/2026-01-02T03-04-05", "again"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "{runs}", "--metrics", "forget_qualty"], "did you mean 'forget_quality'?"),
        (["compare", "{runs}/nowhere"], "report not found"),
        (["compare", "{runs}", "--labels", "a,b"], "2 labels for 3 reports"),
        (["plot", "{runs}", "-o", "{runs}/plot.pdf"], "must end in .png or .svg"),
        (["plot", "{runs}", "--x", "forget_quality", "-o", "{runs}/p.png"], "--x and --y go together"),
        (["plot", "{runs}", "--view", "muse", "-o", "{runs}/p.png"], "nothing to plot"),
    ],
)
def test_compare_and_plot_errors_are_one_line(runs, args, message, capsys):
    assert main([arg.format(runs=runs) for arg in args]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert message in error[-1] and not any("Traceback" in line for line in error)


def test_tofu_view_plots_one_labelled_point_per_report_on_a_log_scale(runs):
    found, skipped = points(load_runs([runs]), VIEWS["tofu"])
    expected = [(run, metric(runs, run, "synthetic_forget01", "forget_quality")["value"],
                 metric(runs, run, "synthetic_forget01", "model_utility")["value"]) for run in ("self", "target")]
    assert [(p.label, p.x, p.y) for p in found] == expected
    assert len(skipped) == 1 and skipped[0].startswith("ref: forget_quality is null (no reference")
    figure = draw(found, VIEWS["tofu"])
    axes = figure.axes[0]
    offsets = axes.collections[0].get_offsets()
    assert [tuple(map(float, row)) for row in offsets] == [(x, y) for _, x, y in expected]
    assert axes.get_xscale() == "log" and "forget quality" in axes.get_xlabel()
    assert [(text.get_text(), tuple(map(float, text.xy))) for text in axes.texts] == [
        (label, (x, y)) for label, x, y in expected]


def test_plot_command_writes_svg_and_png(runs, capsys):
    svg, png = runs / "tofu.svg", runs / "tofu.png"
    assert main(["plot", str(runs), "-o", str(svg), "--title", "tiny"]) == 0
    assert main(["plot", str(runs / "target"), str(runs / "self"), "--x", "support_qa/probability", "--y",
                 "forget_truth_ratio", "-o", str(png)]) == 0
    streams = capsys.readouterr()
    assert f"2 points written to {svg}" in streams.out and "left out ref" in streams.err
    assert "<svg" in svg.read_text()[:500] and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_custom_axes_take_a_task_qualified_metric(runs):
    from mu_eval.report.plot import View

    view = View("probability", "forget_truth_ratio")
    found, _ = points(load_runs([runs / "target"]), view, task=None)
    assert found == []  # no single task has both
    found, skipped = points(load_runs([runs / "target"]), View("probability", "first_choice"))
    assert [(p.x, p.y) for p in found] == [(metric(runs, "target", "support_qa", "probability")["value"],
                                           metric(runs, "target", "support_qa", "first_choice")["value"])]


def test_to_frame_has_one_row_per_metric(runs):
    import pandas

    frames = [load_report(runs / run).to_frame().assign(run=run) for run in ("ref", "target")]
    frame = pandas.concat(frames, ignore_index=True)
    data = json.loads((runs / "target" / "report.json").read_text())
    target = frame[frame.run == "target"].set_index(["task", "metric"])
    assert len(target) == sum(len(section["metrics"]) for section in data["tasks"].values())
    probability = target.loc[("support_qa", "probability")]
    assert probability.value == data["tasks"]["support_qa"]["metrics"]["probability"]["value"]
    assert probability.stderr == data["tasks"]["support_qa"]["metrics"]["probability"]["stderr"]
    null = frame[(frame.run == "ref") & (frame.metric == "forget_quality")].iloc[0]
    assert math.isnan(null.value) and "reference" in null.reason
    assert set(frame.model) == {data["model"]["model"], json.loads((runs / "ref" / "report.json").read_text())[
        "model"]["model"]}


def test_console_summary_header_tables_and_null_reasons(runs):
    report = load_report(runs / "target")
    text = summary(report)
    head = text.splitlines()[:2]
    assert head[0].startswith(f"model {report['model']['model']} | sha256 {report['model']['weights_sha256'][:12]}")
    assert "backend hf" in head[0] and "dtype float32" in head[0]
    assert head[1].startswith(f"chat template ON (lm-eval's default is off) | reference {runs / 'ref' / 'report.json'}")
    rows = {tuple(line.split()[:2]): line.split() for line in text.splitlines()}
    found = report.tasks["support_qa"]["metrics"]["probability"]
    assert rows[("support_qa", "probability")] == ["support_qa", "probability", f"{found['value']:.4g}",
                                                   f"{found['stderr']:.4g}", str(found["n"]), "higher"]
    mia = report["attacks"]["mia"]["tasks"]["synthetic_forget01"]["scores"]
    assert "attack mia" in text
    assert rows[("tasks.synthetic_forget01.scores.loss", f"{mia['loss']['auc']:.4g}")][:2] == [
        "tasks.synthetic_forget01.scores.loss", f"{mia['loss']['auc']:.4g}"]
    width = max(len(line) for line in text.split("\n\nnull values:")[0].splitlines())
    assert width < 150


def test_console_summary_lists_each_null_reason_once_below(runs):
    text = summary(load_report(runs / "ref"))
    body, notes = text.split("\n\nnull values:\n")
    reason = json.loads((runs / "ref" / "report.json").read_text())["tasks"]["synthetic_forget01"]["metrics"][
        "forget_quality"]["reason"]
    assert "null [1]" in next(line for line in body.splitlines() if "forget_quality" in line)
    assert notes.splitlines()[0] == f"[1] {reason}" and reason not in body


def test_printing_a_report_shows_its_summary_not_its_arrays(runs):
    report = load_report(runs / "target")
    assert str(report) == summary(report)
    assert len(str(report)) < len(json.dumps(report.data)) / 3  # the per-item arrays stay out
    assert repr(report) == (f"Report(model={report['model']['model']!r}, "
                            f"sha256={report['model']['weights_sha256'][:12]!r}, tasks={list(report.tasks)!r}, "
                            f"created={report['created']!r})")
