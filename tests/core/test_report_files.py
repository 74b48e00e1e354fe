"""What a run leaves on disk: reports and samples with the umask's permissions, every cache file under
--cache-dir, a report kept (elsewhere, and said so) when its folder vanished mid-run, and references whose
per-item values must match the checksum written beside them."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
from support import FACTS, QATask, register_support_task

import mu_eval
from mu_eval.file_hashes import MEMO_FILE_NAME, forget_in_process_hashes
from mu_eval.references import ReferenceError, load_reference
from mu_eval.report import ReportError


def run(model, **options):
    return mu_eval.evaluate(str(model), [register_support_task()], limit=2, progress=False, **options)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_reports_and_samples_follow_the_umask(tiny_checkpoint, tmp_path, umask):
    previous = os.umask(umask)
    try:
        run(tiny_checkpoint, output_path=tmp_path / "out", log_samples=True, use_cache=False)
    finally:
        os.umask(previous)
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == ["report.json", f"samples_{register_support_task()}.jsonl"]
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name


def test_every_cache_file_lives_under_the_cache_dir(tiny_checkpoint, tmp_path, monkeypatch):
    default = tmp_path / "default-cache"
    monkeypatch.setenv("MU_EVAL_CACHE_DIR", str(default))
    forget_in_process_hashes()  # as a new process: the weight files are hashed, and the memo written
    chosen = tmp_path / "chosen"
    run(tiny_checkpoint, cache_dir=chosen)
    assert (chosen / MEMO_FILE_NAME).is_file()
    assert any(p.suffix == ".sqlite" and p.name != MEMO_FILE_NAME for p in chosen.iterdir())
    assert not default.exists()


class VanishingOutput(QATask):
    """Scores like the support task, then removes the output folder and leaves a file in its place, as a
    cleanup job or an unmounted disk would while the run computes."""

    name = "vanishing_output"
    output: str = ""

    def process_results(self, results, ctx):
        shutil.rmtree(self.output)
        with open(self.output, "w") as handle:
            handle.write("in the way")
        return super().process_results(results, ctx)


def test_a_report_whose_folder_vanished_is_saved_elsewhere_and_said_so(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    task = VanishingOutput()
    task.output = str(out)
    with pytest.raises(ReportError, match="saved to") as error:
        mu_eval.evaluate(str(tiny_checkpoint), [task], limit=2, progress=False, output_path=out, use_cache=False)
    rescued = str(error.value).rsplit("saved to ", 1)[1].removesuffix(" instead")
    data = json.loads(open(rescued).read())
    os.unlink(rescued)
    assert data["tasks"]["vanishing_output"]["metrics"]["probability"]["n"] == 2 == len(FACTS[:2])


@pytest.fixture
def reference_report(tiny_checkpoint, tmp_path):
    run(tiny_checkpoint, output_path=tmp_path / "ref", use_cache=False)
    return tmp_path / "ref" / "report.json"


def test_a_reference_is_read_when_its_items_are_untouched(reference_report):
    data = load_reference(reference_report)
    assert data["tasks"][register_support_task()]["items"]["probability"]


@pytest.mark.parametrize("edit", ["change-a-value", "drop-an-item", "add-an-array"])
def test_a_reference_whose_items_were_edited_is_refused(reference_report, edit):
    data = json.loads(reference_report.read_text())
    items = data["tasks"][register_support_task()]["items"]
    if edit == "change-a-value":
        items["probability"][0] = items["probability"][0] * 0.5
    elif edit == "drop-an-item":
        items["nll"].pop()
    else:
        items["extra"] = [1.0, 2.0]
    reference_report.write_text(json.dumps(data))
    with pytest.raises(ReferenceError, match="checksum"):
        load_reference(reference_report)


def test_unlearn_checks_the_save_model_folder_before_training(tiny_checkpoint, tmp_path):
    from mu_eval.paths import PathError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    model_files = sorted(p.name for p in tiny_checkpoint.iterdir())
    with pytest.raises(PathError, match="save-model"):
        mu_eval.unlearn(str(tiny_checkpoint), method="grad_ascent", forget=[("Q?", "A.")], save_model=blocker / "m")
    assert sorted(p.name for p in tiny_checkpoint.iterdir()) == model_files and blocker.read_text() == "x"


def test_the_arrow_files_of_local_data_go_under_the_cache_dir(tiny_checkpoint, tmp_path, monkeypatch):
    import datasets

    from mu_eval.tasks.synthetic_profiles.generator import write_benchmark

    home_cache = tmp_path / "hf-datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home_cache)  # where datasets writes by default
    data = tmp_path / "data"
    write_benchmark(data, people=10, seed=3)
    chosen = tmp_path / "chosen"
    mu_eval.evaluate(str(tiny_checkpoint), ["tofu_forget01"], task_options={"tofu_forget01": {"max_new_tokens": 2}},
                     data_dir=data, limit=1, progress=False, cache_dir=chosen)
    assert any(path.suffix == ".arrow" for path in (chosen / "datasets").rglob("*"))
    assert not home_cache.exists() or not any(home_cache.rglob("*.arrow"))
