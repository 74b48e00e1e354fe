"""MMLU (cais/mmlu schema): lm-eval prompt with 0 or 5 dev shots, per-subject and size-weighted accuracy."""

import json

import pytest
from wmdp_support import make_rows

import mu_eval
from mu_eval.task import TaskOptionError
from mu_eval.tasks.wmdp.mmlu import MmluTask, mmlu_context


def read_samples(folder, task):
    with (folder / f"samples_{task}.jsonl").open() as handle:
        return [json.loads(line) for line in handle]


def solved(row):
    c = row["choices"]
    return f"{row['question'].strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\nAnswer: {'ABCD'[row['answer']]}"


def test_five_shot_context_written_out_by_hand(mmlu_dir):
    dev = [json.loads(line) for line in (mmlu_dir / "mmlu" / "all" / "dev.jsonl").read_text().splitlines()]
    shots = [r for r in dev if r["subject"] == "high_school_biology"][:5]
    row = make_rows(["cell"])[0]
    c = row["choices"]
    expected = ("The following are multiple choice questions (with answers) about high school biology.\n\n"
                + "".join(solved(s) + "\n\n" for s in shots)
                + f"{row['question'].strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\nAnswer:")
    assert mmlu_context("high_school_biology", row, shots, "test") == expected
    assert mmlu_context("high_school_biology", row, [], "test") == (
        "The following are multiple choice questions (with answers) about high school biology.\n\n"
        + expected.split("\n\n")[-1]
    )


def test_options_are_checked():
    assert MmluTask().subjects is None and MmluTask(subjects="all").subjects is None
    assert MmluTask(subjects="anatomy+virology").subjects == ("anatomy", "virology")
    assert MmluTask(subjects=["anatomy"]).subjects == ("anatomy",)
    assert MmluTask().num_fewshot == 0 and MmluTask(num_fewshot="3").num_fewshot == 3
    with pytest.raises(TaskOptionError, match="num_fewshot=6: must be at most 5"):
        MmluTask(num_fewshot=6)
    with pytest.raises(TaskOptionError, match="subjects"):
        MmluTask(subjects="all+anatomy")


@pytest.mark.parametrize(("task", "options", "shots"), [("mmlu", {}, 0), ("mmlu_5shot", {}, 5),
                                                         ("mmlu", {"subjects": "computer_security"}, 0)])
def test_mmlu_accuracy_is_size_weighted(letter_checkpoint, mmlu_dir, tmp_path, task, options, shots):
    report = mu_eval.evaluate(str(letter_checkpoint), [task], data_dir=mmlu_dir, task_options={task: options},
                              output_path=tmp_path, log_samples=True, progress=False)
    result = report.tasks[task]
    samples = read_samples(tmp_path, task)
    assert result["info"]["num_fewshot"] == shots and result["info"]["single_pass_share"] == 1.0
    subjects = {"computer_security": 2} if options else {"high_school_biology": 3, "computer_security": 2}
    assert result["info"]["subject_sizes"] == subjects
    for subject, size in subjects.items():
        correct = [float(s["choice"] == s["gold"]) for s in samples if s["subject"] == subject]
        assert len(correct) == size
        assert result["metrics"][f"acc_{subject}"]["value"] == pytest.approx(sum(correct) / size)
    total = sum(subjects.values())
    weighted = sum(result["metrics"][f"acc_{s}"]["value"] * n for s, n in subjects.items()) / total
    assert result["metrics"]["acc"]["value"] == pytest.approx(weighted)
    assert result["metrics"]["acc"]["n"] == total


def test_too_few_dev_examples_is_an_error(letter_checkpoint, tmp_path):
    from wmdp_support import write_jsonl

    from mu_eval.data import DataError

    rows = [{**r, "subject": "anatomy"} for r in make_rows(["bone", "skin"])]
    write_jsonl(tmp_path / "mmlu" / "all" / "test.jsonl", rows)
    write_jsonl(tmp_path / "mmlu" / "all" / "dev.jsonl", rows)
    with pytest.raises(DataError, match="'anatomy': 2 dev examples for 5 shots"):
        mu_eval.evaluate(str(letter_checkpoint), ["mmlu_5shot"], data_dir=tmp_path, progress=False)
