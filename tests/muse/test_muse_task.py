"""muse_news end to end on a tiny model from the real MUSE-News files, every number recomputed here."""

import json
import math

import pytest
import torch
from rouge_score import rouge_scorer
from transformers import AutoModelForCausalLM, AutoTokenizer

import mu_eval
from mu_eval.cli import main as cli_main
from mu_eval.data import DataError

LIMIT = 2


def read_samples(folder, task):
    with (folder / f"samples_{task}.jsonl").open() as handle:
        return [json.loads(line) for line in handle]


def f1(gold, prediction):
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False).score(gold, prediction)["rougeL"].fmeasure


def min_40(model, tokenizer, text):
    """Min-K% k=0.4 by hand: BOS + text, log-probs of every token after BOS, mean of the floor(0.4 T) lowest."""
    ids = tokenizer(text, return_tensors="pt").input_ids
    assert ids[0, 0].item() == tokenizer.bos_token_id
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
    token_logprobs = logprobs.gather(-1, ids[0, 1:, None]).squeeze(-1).sort().values
    m = math.floor(0.4 * token_logprobs.numel())
    return token_logprobs[:m].mean().item()


def pairwise_auc(members, nonmembers):
    wins = sum((m > h) + 0.5 * (m == h) for m in members for h in nonmembers)
    return wins / (len(members) * len(nonmembers))


@pytest.fixture(scope="module")
def muse_run(muse_checkpoint, muse_news_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("muse-report")
    report = mu_eval.evaluate(str(muse_checkpoint), ["muse_news"], data_dir=muse_news_dir, limit=LIMIT,
                              output_path=out, log_samples=True, progress=False)
    return report, read_samples(out, "muse_news")


@pytest.fixture(scope="module")
def hf_model(muse_checkpoint):
    return AutoModelForCausalLM.from_pretrained(muse_checkpoint).eval(), AutoTokenizer.from_pretrained(muse_checkpoint)


def test_verbmem_gold_cut_to_128_tokens_and_f1(muse_run, muse_news_dir, hf_model):
    report, samples = muse_run
    _, tokenizer = hf_model
    rows = json.loads((muse_news_dir / "verbmem" / "forget.json").read_text())[:LIMIT]
    verbmem = [s for s in samples if s["part"] == "verbmem"]
    assert len(verbmem) == LIMIT
    assert any(len(tokenizer(r["gt"]).input_ids) > 128 for r in rows)
    for row, sample in zip(rows, verbmem):
        ids = tokenizer(row["gt"]).input_ids[:128]  # BOS counts among the 128
        assert sample["gold"] == tokenizer.decode(ids, skip_special_tokens=True)
        assert sample["rougeL_f1"] == pytest.approx(f1(sample["gold"], sample["prediction"]))
    metric = report.tasks["muse_news"]["metrics"]["verbmem_f"]
    assert metric["n"] == LIMIT and metric["higher_is_better"] is False
    assert metric["value"] == pytest.approx(100 * sum(s["rougeL_f1"] for s in verbmem) / LIMIT)


def test_knowmem_forget_and_retain(muse_run, muse_news_dir, hf_model):
    report, samples = muse_run
    model, tokenizer = hf_model
    metrics = report.tasks["muse_news"]["metrics"]
    for family, key, original in (("forget", "knowmem_f", "forget_qa"), ("retain", "knowmem_r", "retain2_qa")):
        rows = json.loads((muse_news_dir / "knowmem" / f"{original}.json").read_text())[:LIMIT]
        part = [s for s in samples if s["part"] == f"knowmem_{family}"]
        assert [s["question"] for s in part] == [r["question"] for r in rows]
        for sample in part:
            assert not any(stop in sample["prediction"] for stop in ("\n\n", "\nQuestion", "Question:"))
            assert sample["rougeL_f1"] == pytest.approx(f1(sample["gold"], sample["prediction"]))
        assert metrics[key]["value"] == pytest.approx(100 * sum(s["rougeL_f1"] for s in part) / LIMIT)
    assert metrics["knowmem_f"]["higher_is_better"] is False and metrics["knowmem_r"]["higher_is_better"] is True
    # item 0 of the forget set, generated here: 10-shot prompt, 32 tokens, cut at the stops
    icl = json.loads((muse_news_dir / "knowmem" / "forget_qa_icl.json").read_text())
    question = json.loads((muse_news_dir / "knowmem" / "forget_qa.json").read_text())[0]["question"]
    prompt = "".join(f"Question: {p['question']}\nAnswer: {p['answer']}\n\n" for p in icl)
    ids = tokenizer(prompt + f"Question: {question}\nAnswer: ", return_tensors="pt").input_ids
    with torch.no_grad():
        output = model.generate(ids, max_new_tokens=32, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    text = tokenizer.decode(output[0, ids.shape[1]:], skip_special_tokens=True)
    for stop in ("\n\n", "\nQuestion", "Question:"):
        text = text.split(stop)[0]
    assert [s for s in samples if s["part"] == "knowmem_forget"][0]["prediction"] == text


def test_privleak_on_real_files_against_published_reference(muse_run, muse_news_dir, hf_model):
    report, _ = muse_run
    model, tokenizer = hf_model
    task = report.tasks["muse_news"]
    forget = json.loads((muse_news_dir / "privleak" / "forget.json").read_text())[:LIMIT]
    holdout = json.loads((muse_news_dir / "privleak" / "holdout.json").read_text())[:LIMIT]
    forget_scores = [min_40(model, tokenizer, t) for t in forget]
    holdout_scores = [min_40(model, tokenizer, t) for t in holdout]
    assert task["items"]["privleak_forget_mink40"] == pytest.approx(forget_scores, abs=1e-4)
    assert task["items"]["privleak_holdout_mink40"] == pytest.approx(holdout_scores, abs=1e-4)
    auc = pairwise_auc(task["items"]["privleak_forget_mink40"], task["items"]["privleak_holdout_mink40"])
    assert task["metrics"]["privleak_auc"]["value"] == pytest.approx(auc)
    leak = task["metrics"]["privleak"]
    assert leak["value"] == pytest.approx((0.5228 - auc) / (1 - 0.5228) * 100)
    assert "published MUSE retrained-model AUC 0.4772" in leak["variant"]
    assert task["info"]["privleak"]["reference"].startswith("published")


def test_privleak_against_a_reference_report(muse_run, muse_checkpoint, muse_news_dir):
    report, _ = muse_run
    with pytest.warns(UserWarning, match="same sha256"):
        again = mu_eval.evaluate(str(muse_checkpoint), ["muse_news"], data_dir=muse_news_dir, limit=LIMIT,
                                 reference=report.data, task_options={"muse_news": {"parts": "privleak"}},
                                 progress=False)
    task = again.tasks["muse_news"]
    assert set(task["metrics"]) == {"privleak_auc", "privleak"}
    assert task["metrics"]["privleak"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert task["info"]["privleak"]["reference"].startswith("reference report")
    alone = mu_eval.evaluate(str(muse_checkpoint), ["muse_news"], data_dir=muse_news_dir, limit=LIMIT,
                             task_options={"muse_news": {"parts": "privleak", "published_reference": "false"}},
                             progress=False)
    metric = alone.tasks["muse_news"]["metrics"]["privleak"]
    assert metric["value"] is None and "no reference report" in metric["reason"]


def test_cli_runs_muse_news(muse_checkpoint, muse_news_dir, tmp_path, capsys):
    code = cli_main(["--model", str(muse_checkpoint), "--tasks", "muse_news", "--data-dir", str(muse_news_dir),
                     "--limit", "2", "--task-args", "parts=knowmem", "--output-path", str(tmp_path), "--quiet"])
    assert code == 0
    loaded = mu_eval.load_report(tmp_path)
    assert set(loaded.tasks["muse_news"]["metrics"]) == {"knowmem_f", "knowmem_r"}
    assert loaded.tasks["muse_news"]["metrics"]["knowmem_f"]["n"] == 2
    assert "knowmem_f" in capsys.readouterr().out


def test_malformed_record_is_a_named_error(muse_checkpoint, tmp_path):
    folder = tmp_path / "knowmem"
    folder.mkdir()
    (folder / "forget_qa_icl.json").write_text(json.dumps([{"question": "q", "answer": "a"}]))
    (folder / "forget_qa.json").write_text(json.dumps([{"question": "q", "answer": "a"}, {"question": "q2"}]))
    with pytest.raises(DataError, match=r"forget_qa\.json: row 1 lacks field 'answer'"):
        mu_eval.evaluate(str(muse_checkpoint), ["muse_news"], data_dir=tmp_path,
                         task_options={"muse_news": {"parts": "knowmem"}}, progress=False)


def test_batch_size_does_not_change_knowmem(muse_checkpoint, muse_news_dir):
    runs = [
        mu_eval.evaluate(str(muse_checkpoint), ["muse_news"], data_dir=muse_news_dir, limit=3, batch_size=size,
                         task_options={"muse_news": {"parts": "knowmem"}}, use_cache=False, progress=False)
        for size in (1, 6)
    ]
    first, second = (r.tasks["muse_news"]["items"] for r in runs)
    assert first == second


def test_open_unlearning_muse_logs_as_reference(muse_checkpoint, muse_news_dir, benchmark_data):
    """open-unlearning's MUSE-News logs (retrained and target Llama-2-7b): its published target PrivLeak is
    recomputed from the two logs' per-item Min-40% scores, and the retrained log serves a run as reference."""
    from mu_eval.metrics.mia import auc, privleak
    from mu_eval.references import load_reference

    folder = benchmark_data / "open-unlearning"
    retrain = load_reference(folder / "muse_Llama-2-7b-hf_News_retrain")  # the folder name says News
    target = load_reference(folder / "muse_Llama-2-7b-hf_News_target" / "MUSE_EVAL.json")
    published = json.loads((folder / "muse_Llama-2-7b-hf_News_target" / "MUSE_EVAL.json").read_text())
    ours = [auc(report["tasks"]["muse_news"]["items"]["privleak_forget_mink40"],
                report["tasks"]["muse_news"]["items"]["privleak_holdout_mink40"]) for report in (retrain, target)]
    assert ours[1] == pytest.approx(published["mia_min_k"]["auc"], abs=1e-12)
    assert privleak(ours[1], ours[0]) == pytest.approx(published["privleak"]["agg_value"], abs=1e-6)
    run = mu_eval.evaluate(str(muse_checkpoint), ["muse_news"], data_dir=muse_news_dir, limit=LIMIT,
                           reference=str(folder / "muse_Llama-2-7b-hf_News_retrain"),
                           task_options={"muse_news": {"parts": "privleak"}}, progress=False)
    info = run.tasks["muse_news"]["info"]["privleak"]
    assert info["reference_auc"] == pytest.approx(ours[0], abs=1e-12) and info["reference"].startswith(
        "reference report (100 + 100 texts)")
    assert run.tasks["muse_news"]["metrics"]["privleak"]["value"] == pytest.approx(privleak(info["auc"], ours[0]))


def test_muse_views_plot_the_run_at_its_privleak_and_utility(muse_run):
    from pathlib import Path

    from mu_eval.report.compare import Run
    from mu_eval.report.plot import VIEWS, draw, points

    report, _ = muse_run
    metrics = report.tasks["muse_news"]["metrics"]
    for view_name, x in (("muse", "privleak"), ("muse-verbmem", "verbmem_f"), ("muse-knowmem", "knowmem_f")):
        found, skipped = points([Run("tiny", Path("report.json"), report)], VIEWS[view_name])
        assert skipped == [] and [(p.label, p.x, p.y) for p in found] == [
            ("tiny", metrics[x]["value"], metrics["knowmem_r"]["value"])]
        axes = draw(found, VIEWS[view_name]).axes[0]
        assert [tuple(map(float, row)) for row in axes.collections[0].get_offsets()] == [(found[0].x, found[0].y)]
        assert axes.get_xscale() == "linear" and axes.texts[0].get_text() == "tiny"
