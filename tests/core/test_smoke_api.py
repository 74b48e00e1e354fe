from support import FACTS, QATask

import mu_eval


def test_evaluate_on_tiny_checkpoint_writes_valid_report(tiny_checkpoint, tmp_path):
    report = mu_eval.evaluate(str(tiny_checkpoint), [QATask()], output_path=tmp_path, log_samples=True, progress=False)
    loaded = mu_eval.load_report(tmp_path)
    assert loaded.data == report.data
    metric = loaded.tasks["support_qa"]["metrics"]["probability"]
    assert metric["n"] == len(FACTS) and 0 < metric["value"] < 1
    assert (tmp_path / "samples_support_qa.jsonl").is_file()
