"""SAMSum (seq2seq, `--backend classifier`) and Celeb Profile (causal, `--backend hf`) end to end."""

from __future__ import annotations

import json

import mubench_helpers as h
import pytest
import torch
from rouge_score import rouge_scorer

from mu_eval.cli import main
from mu_eval.tasks.mu_bench.generation import newline_sentences


def run(task, model, root, backend, df, task_args="max_new_tokens=8"):
    df_file = h.write_index_file(df, root / "df.txt")
    out = root / f"out-{task}"
    argv = ["--model", str(model), "--backend", backend, "--tasks", task, "--data-dir", str(root / "data"),
            "--task-args", f"df_file={df_file},ratio=10,{task_args}", "--output-path", str(out), "--quiet",
            "--no-cache", "--log-samples", "--no-chat-template"]
    assert main(argv) == 0
    return json.loads((out / "report.json").read_text())["tasks"][task]


def rouge(gold, prediction):
    """A second computation: rouge_score on the reference's own sentence splitting (stemmer on)."""
    scorer = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], use_stemmer=True)
    scores = scorer.score(newline_sentences(gold), newline_sentences(prediction))
    return scores["rougeL"].fmeasure, scores["rougeLsum"].fmeasure


def test_samsum_with_a_seq2seq_model(tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    rows = [{"id": str(i), "dialogue": f"Amanda: {h.sentence(i)}\nJerry: {h.sentence(i + 30)}",
             "summary": f"{h.sentence(i + 60, 4)}. {h.sentence(i + 90, 3)}."} for i in range(9)]
    h.write_parquet(rows[:6], tmp_path / "data" / "samsum" / "train.parquet")
    h.write_parquet(rows[6:], tmp_path / "data" / "samsum" / "test.parquet")
    model_dir = h.t5(tmp_path / "t5", [r["dialogue"] + " " + r["summary"] for r in rows])
    task = run("mubench_samsum", model_dir, tmp_path, "classifier", df=[1, 4], task_args="max_new_tokens=8")
    assert task["items"]["forget_index"] == [1, 4] and len(task["items"]["retain_index"]) == 2  # |D_f| by default
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    sets = {"test": rows[6:], "forget": [rows[1], rows[4]], "retain": [rows[i] for i in task["items"]["retain_index"]]}
    for name, chosen in sets.items():
        scores = []
        for row in chosen:
            encoded = tokenizer("summarize: " + row["dialogue"], return_tensors="pt", return_token_type_ids=False)
            with torch.no_grad():
                output = model.generate(**encoded, max_new_tokens=8, do_sample=False)
            scores.append(rouge(row["summary"], tokenizer.decode(output[0], skip_special_tokens=True)))
        assert task["items"][f"{name}_rougeL"] == pytest.approx([s[0] for s in scores])
        assert task["metrics"][f"{name}_rougeLsum"]["value"] == pytest.approx(sum(s[1] for s in scores) / len(scores))
    expected = (task["metrics"]["test_rougeL"]["value"] + 1 - task["metrics"]["forget_rougeL"]["value"]) / 2
    assert task["metrics"]["overall"]["value"] == pytest.approx(expected)


def test_rouge_variants_differ_only_by_sentence_lines():
    gold, prediction = "the cat sat. the dog ran.", "the dog ran. the cat sat."
    rouge_l, rouge_lsum = rouge(gold, prediction)
    assert rouge_lsum == pytest.approx(1.0) and rouge_l < 1.0


def test_celeb_profile_with_a_causal_model(tmp_path, tiny_checkpoint):
    from support import TRAINING_TEXTS

    rows = [{"name": f"Person {i}", "profile": TRAINING_TEXTS[i % len(TRAINING_TEXTS)]} for i in range(8)]
    h.write_parquet(rows[:5], tmp_path / "data" / "celeb_profile" / "train.parquet")
    h.write_parquet(rows[5:], tmp_path / "data" / "celeb_profile" / "test.parquet")
    task = run("mubench_celeb_profile", tiny_checkpoint, tmp_path, "hf", df=[2],
               task_args="max_new_tokens=6,retain_eval_size=4")
    assert task["items"]["retain_index"] == [0, 1, 3, 4]
    samples = [json.loads(line) for line in (tmp_path / "out-mubench_celeb_profile" /
                                             "samples_mubench_celeb_profile.jsonl").read_text().splitlines()]
    for sample in samples:
        position = task["items"][f"{sample['set']}_index"].index(sample["index"])
        assert task["items"][f"{sample['set']}_rougeL"][position] == pytest.approx(
            rouge(sample["gold"], sample["generation"])[0])


def test_generative_tasks_feed_the_llm_methods(tmp_path, tiny_checkpoint):
    from support import TRAINING_TEXTS

    rows = [{"name": f"Person {i}", "profile": TRAINING_TEXTS[i % len(TRAINING_TEXTS)]} for i in range(6)]
    h.write_parquet(rows[:4], tmp_path / "data" / "celeb_profile" / "train.parquet")
    h.write_parquet(rows[4:], tmp_path / "data" / "celeb_profile" / "test.parquet")
    df_file = h.write_index_file([1], tmp_path / "df.txt")
    out = tmp_path / "out"
    argv = ["--model", str(tiny_checkpoint), "--tasks", "mubench_celeb_profile", "--data-dir", str(tmp_path / "data"),
            "--task-args", f"df_file={df_file},max_new_tokens=4", "--method", "grad_ascent",
            "--method-args", "steps=2,batch_size=1,grad_accum_steps=1", "--output-path", str(out), "--quiet"]
    assert main(argv) == 0
    method = json.loads((out / "report.json").read_text())["method"]
    assert method["name"] == "grad_ascent" and method["data"]["forget"] == 1 and method["data"]["retain"] == 3
