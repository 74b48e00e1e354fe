"""MLLMU-Bench through `mu-eval --backend llava` on a tiny LLaVA; prompts, parsing and every score checked."""

from __future__ import annotations

import json

import mllmu_helpers as h
import numpy as np
import pytest
import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_score import rouge_scorer

from mu_eval.cli import main
from mu_eval.tasks.mllmu_bench import prompts

QUESTION = {"Question": "Where?", "Options": {"A": "x", "B": "y", "C": "z", "D": "w"}, "Correct_Answer": "C"}


def test_prompts_match_the_released_format():
    assert prompts.mc_prompt(QUESTION, True, [QUESTION]) == (
        "USER: <image>\nQuestion: Where?\nA: x\nB: y\nC: z\nD: w\nCorrect Answer: C\n"
        "USER: <image>\nWhere?\nA: x\nB: y\nC: z\nD: w\nJust give ONE letter representing the answer directly.\n"
        "ASSISTANT:")
    assert prompts.mc_prompt(QUESTION, False, []).startswith("USER:\nWhere?\nA: x")
    cloze = {"Question": "Born in __.", "Ground_Truth": "Oslo"}
    assert prompts.cloze_prompt(cloze, False, [cloze]) == (
        "USER:\nBorn in [Blank].\nAnswer: Oslo\nUSER:\nBorn in [Blank].\n"
        "Please **ONLY** provide the correct answer that should replace the [Blank].\nASSISTANT:")
    assert prompts.generation_prompt({"Question": "Who?"}, True) == (
        "USER: <image>\nWho?\nAnswer the question based on your trained knowledge in one sentence accurately "
        "in ENGLISH.\nASSISTANT:")


def test_answer_parsing_and_scores():
    assert prompts.parse_letter(" b) Oslo") == "B"
    assert prompts.parse_letter("E") is None and prompts.parse_letter("  ") is None
    assert prompts.parse_letter("ASSISTANT: d") == "D"
    assert prompts.cloze_correct("Oslo", "It was OSLO, I think") and not prompts.cloze_correct("Oslo", "Bergen")
    assert prompts.bleu("a b c d", "a b c d") == pytest.approx(1.0)
    assert prompts.bleu("a b c d", "") == 0.0
    # one matching unigram of two, no higher n-grams: method1 gives 0.1 / 1 for empty orders; brevity penalty e^(1-4/2)
    expected = (0.5 * 0.1 * 0.1 * 0.1) ** 0.25 * np.exp(1 - 4 / 2)
    assert prompts.bleu("a b c d", "a x") == pytest.approx(expected)


def run(model, data, out, seed="7") -> tuple[dict, list[dict]]:
    argv = ["--model", str(model), "--backend", "llava", "--tasks", "mllmu_bench", "--data-dir", str(data),
            "--task-args", "max_new_tokens=6", "--output-path", str(out), "--quiet", "--no-cache", "--log-samples",
            "--seed", seed, "--batch-size", "5"]
    assert main(argv) == 0
    task = json.loads((out / "report.json").read_text())["tasks"]["mllmu_bench"]
    samples = [json.loads(line) for line in (out / "samples_mllmu_bench.jsonl").read_text().splitlines()]
    return task, samples


def picture_of(profile_id: str):
    return h.picture(int(profile_id[1:]))


def test_mllmu_end_to_end(llava_checkpoint, mllmu_data, tmp_path):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    task, samples = run(llava_checkpoint, mllmu_data, tmp_path / "a")
    metrics = {k: v["value"] for k, v in task["metrics"].items()}
    shots = task["info"]["fewshot_ids"]
    assert len(shots) == 2 and all(s in {"p2", "p3", "p4", "p5"} for s in shots)
    assert {s["id"] for s in samples if s["set"] == "test"} == {"p0", "p1"}  # Test_Set rows of the forget IDs
    retain_mc = [s for s in samples if s["set"] == "retain" and s["probe"] == "classification"]
    assert {s["id"] for s in retain_mc} == {"p2", "p3", "p4", "p5"} - set(shots)  # few-shot profiles left out
    assert task["metrics"]["forget_classification_text_accuracy"]["n"] == 2

    # every score recomputed from the logged replies with the reference libraries
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected: dict[str, list[float]] = {}
    for s in samples:
        prefix = f"{s['set']}_{s['probe']}_{s['view']}"
        reply = s["reply"].strip()
        if s["probe"] == "classification":
            letter = reply[:1].upper()
            expected.setdefault(f"{prefix}_accuracy", []).append(float(letter in "ABCD" and letter != "" and
                                                                       letter == s["gold"]))
        elif s["probe"] == "cloze":
            expected.setdefault(f"{prefix}_accuracy", []).append(float(s["gold"].lower() in reply.lower()))
        else:
            scores = scorer.score(s["gold"], reply)
            for key in ("rouge1", "rouge2", "rougeL"):
                expected.setdefault(f"{prefix}_{key}", []).append(scores[key].fmeasure)
            bleu = sentence_bleu([s["gold"].split()], reply.split(), smoothing_function=SmoothingFunction().method1)
            expected.setdefault(f"{prefix}_bleu", []).append(bleu if reply.split() else 0.0)
    assert set(expected) == set(metrics)
    for key, values in expected.items():
        assert metrics[key] == pytest.approx(np.mean(values)), key

    # replies equal the model run directly, one example at a time (no padding, no batching)
    model = LlavaForConditionalGeneration.from_pretrained(llava_checkpoint).eval()
    processor = AutoProcessor.from_pretrained(llava_checkpoint)
    checked = 0
    for s in samples:
        if s["set"] == "test" or checked >= 8:
            continue
        count = s["prompt"].count("<image>")
        if s["probe"] == "classification":
            images = [picture_of(i) for i in shots[:1]][: count - 1] + [picture_of(s["id"])]
        else:
            images = [picture_of(i) for i in shots[:2]][: count - 1] + [picture_of(s["id"])]
        encoded = processor(text=s["prompt"], images=images[-count:] if count else None, return_tensors="pt",
                            return_token_type_ids=False)
        with torch.no_grad():
            output = model.generate(**encoded, max_new_tokens=6, do_sample=False)
        new = output[0, encoded["input_ids"].shape[1]:].tolist()
        eos = processor.tokenizer.eos_token_id
        new = new[: new.index(eos)] if eos in new else new
        assert processor.tokenizer.decode(new, skip_special_tokens=True) == s["reply"], (s["set"], s["id"], shots)
        checked += 1
    assert checked == 8

    again, again_samples = run(llava_checkpoint, mllmu_data, tmp_path / "b")
    assert again["info"] == task["info"] and [s["reply"] for s in again_samples] == [s["reply"] for s in samples]


def built_task(data, seed):
    from mu_eval.data import load_rows
    from mu_eval.plugins import get_registry
    from mu_eval.task import TaskContext

    task = get_registry().task("mllmu_forget5", max_new_tokens="6")
    ctx = TaskContext(load=lambda spec: load_rows(spec, data), chat=str, uses_chat_template=False, seed=seed)
    return task, ctx, task.build_requests(ctx)


def test_scores_on_crafted_replies(mllmu_data):
    from mu_eval.requests import GenerateResult

    task, ctx, requests = built_task(mllmu_data, seed=7)
    replies = []
    for entry in task.plan:
        if entry["probe"] == "classification":
            replies.append("b) yes" if entry["set"] == "forget" else " C")
        elif entry["probe"] == "cloze":
            replies.append(f"maybe {entry['gold'].upper()}!" if entry["set"] == "retain" else "nothing")
        else:
            words = entry["gold"].split()
            replies.append(entry["gold"] if entry["set"] == "celebrity" else " ".join(words[: len(words) // 2]))
    result = task.process_results([GenerateResult(r) for r in replies], ctx)
    values = {k: v.value for k, v in result.metrics.items()}
    assert values["forget_classification_multimodal_accuracy"] == 1.0
    assert values["test_classification_text_accuracy"] == 0.0
    assert values["retain_cloze_text_accuracy"] == 1.0 and values["forget_cloze_multimodal_accuracy"] == 0.0
    assert values["celebrity_generation_text_rougeL"] == 1.0 and values["celebrity_generation_multimodal_bleu"] == 1.0
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    golds = [e["gold"] for e in task.plan
             if (e["set"], e["probe"], e["view"]) == ("retain", "generation", "text")]
    halves = [" ".join(g.split()[: len(g.split()) // 2]) for g in golds]
    expected = np.mean([scorer.score(g, p)["rouge2"].fmeasure for g, p in zip(golds, halves)])
    assert values["retain_generation_text_rouge2"] == pytest.approx(expected) and 0 < expected < 1
    bleu = np.mean([sentence_bleu([g.split()], p.split(), smoothing_function=SmoothingFunction().method1)
                    for g, p in zip(golds, halves)])
    assert values["retain_generation_text_bleu"] == pytest.approx(bleu)
    assert result.metrics["forget_classification_text_accuracy"].higher_is_better is False


def test_few_shot_and_test_images_are_seeded(mllmu_data):
    def choices(seed):
        task, _, requests = built_task(mllmu_data, seed)
        test_images = [r.images for r, e in zip(requests, task.plan) if e["set"] == "test" and r.images]
        return task.info["fewshot_ids"], test_images

    assert choices(3) == choices(3)
    assert len({repr(choices(seed)) for seed in range(6)}) > 1
