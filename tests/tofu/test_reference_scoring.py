"""TOFU's numbers against a restatement of open-unlearning's evaluation in this file, on a byte-level and a
SentencePiece-style tokenizer, with the plain prompt whose trailing space merges into the answer's first token.

open-unlearning, as restated here: labels are the tokens of prompt + answer after len(tokenize(prompt)), plus
EOS; Prob = exp(-mean NLL over the labels); truth ratio from the paraphrase and the mean perturbed NLL; ES
searches k in 0..n-1 over the labels without the last (the EOS); Min-K% scores -mean of the max(1,
int(0.4 n)) lowest log-probs (the EOS left out) of every forget row and every holdout row, and the AUC labels
forget 0 and holdout 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from tokenizer_kinds import KINDS, make_tokenizer, model_for

import mu_eval
from mu_eval.task import TaskOptionError
from mu_eval.tasks.synthetic_profiles.generator import build_benchmark, write_benchmark

PEOPLE, DATA_SEED, LIMIT = 10, 3, 3
TASK = "tofu_forget01"
PLAIN = "Question: {q}\nAnswer: "
LEGACY = "[INST] {q} [/INST]"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tofu-reference-data")
    write_benchmark(directory, people=PEOPLE, seed=DATA_SEED)
    return directory


@pytest.fixture(scope="module")
def benchmark():
    return build_benchmark(PEOPLE, DATA_SEED)


@pytest.fixture(scope="module", params=KINDS)
def pair(request, benchmark):
    """(kind, model, tokenizer) with the tokenizer trained on the benchmark's questions and answers."""
    texts = []
    for rows in benchmark.values():
        for row in rows:
            answers = [row["answer"], row.get("paraphrased_answer", ""), *row.get("perturbed_answer", [])]
            texts += [PLAIN.format(q=row["question"]) + a for a in answers if a]
            texts.append(LEGACY.format(q=row["question"]) + " " + row["answer"])
    tokenizer = make_tokenizer(request.param, texts[:3000])
    return request.param, model_for(tokenizer, seed=11), tokenizer


def run(pair, data_dir, **options):
    _, model, tokenizer = pair
    task_options = {TASK: {"max_new_tokens": 4, **options}}
    return mu_eval.evaluate((model, tokenizer), [TASK], task_options=task_options, data_dir=data_dir, limit=LIMIT,
                            progress=False)


class OpenUnlearning:
    """The reference evaluation restated: one forward pass per (prompt, answer), labels by prompt length."""

    def __init__(self, model, tokenizer, template: str = PLAIN):
        self.model, self.tokenizer, self.template = model, tokenizer, template

    def labelled(self, question: str, answer: str) -> tuple[list[float], list[bool]]:
        prompt = self.template.format(q=question)
        full = self.tokenizer(prompt + answer, add_special_tokens=True)["input_ids"]
        prompt_ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        if full[-1] != self.tokenizer.eos_token_id:
            full = full + [self.tokenizer.eos_token_id]
        labels = [-100] * len(prompt_ids) + full[len(prompt_ids):]
        with torch.no_grad():
            logp = torch.log_softmax(self.model(torch.tensor([full])).logits[0].double(), dim=-1)
        positions = [i for i in range(1, len(full)) if labels[i] != -100]
        return ([float(logp[i - 1, full[i]]) for i in positions],
                [int(logp[i - 1].argmax()) == full[i] for i in positions])

    def avg_loss(self, question: str, answer: str) -> float:
        logprobs, _ = self.labelled(question, answer)
        return -sum(logprobs) / len(logprobs)

    def extraction_strength(self, question: str, answer: str) -> float:
        _, hits = self.labelled(question, answer)
        hits = hits[:-1]  # the EOS is left out
        n = len(hits)
        if n == 0:
            return 0.0
        for k in range(n):
            if all(hits[k:]):
                break
        return 1 - k / n

    def min_k(self, question: str, answer: str, k: float = 0.4) -> float:
        logprobs, _ = self.labelled(question, answer)
        values = np.sort(np.array(logprobs[:-1]))
        if values.size == 0:
            return 0.0
        return float(-np.mean(values[: max(1, int(len(values) * k))]))


def test_tofu_numbers_equal_open_unlearning_with_a_merging_prompt(pair, data_dir, benchmark):
    kind, model, tokenizer = pair
    report = run(pair, data_dir)
    task = report.tasks[TASK]
    config, items = task["config"], task["items"]
    assert (config["scoring"], config["extraction_strength"], config["mia_sets"]) == ("reference", "reference", "all")
    forget = benchmark["forget01_perturbed"]
    assert task["info"]["prompt_example"] == PLAIN.format(q=forget[0]["question"])
    ou = OpenUnlearning(model, tokenizer)
    rows = forget[:LIMIT]
    prob = [math.exp(-ou.avg_loss(r["question"], r["answer"])) for r in rows]
    assert items["forget_prob"] == pytest.approx(prob, rel=1e-4)
    s = [math.exp(np.mean([ou.avg_loss(r["question"], p) for p in r["perturbed_answer"]])
                  - ou.avg_loss(r["question"], r["paraphrased_answer"])) for r in rows]
    assert items["forget_truth_ratio_s"] == pytest.approx(s, rel=1e-4)
    assert items["forget_extraction_strength"] == pytest.approx(
        [ou.extraction_strength(r["question"], r["answer"]) for r in rows], abs=1e-9)
    # membership inference: every forget row against every holdout row, whatever --limit says
    holdout = benchmark["holdout01"]
    forget_scores = [ou.min_k(r["question"], r["answer"]) for r in forget]
    holdout_scores = [ou.min_k(r["question"], r["answer"]) for r in holdout]
    assert len(items["forget_min_k"]) == len(forget) > LIMIT and len(items["holdout_min_k"]) == len(holdout)
    assert [-v for v in items["forget_min_k"]] == pytest.approx(forget_scores, abs=1e-4)
    assert [-v for v in items["holdout_min_k"]] == pytest.approx(holdout_scores, abs=1e-4)
    labels = [0] * len(forget_scores) + [1] * len(holdout_scores)
    auc = roc_auc_score(labels, forget_scores + holdout_scores)
    assert task["metrics"]["mia_min_k_auc"]["value"] == pytest.approx(auc, abs=1e-9)
    assert task["metrics"]["mia_min_k_auc"]["n"] == len(forget) + len(holdout)


def test_each_difference_from_the_reference_is_an_option(pair, data_dir, benchmark):
    kind, model, tokenizer = pair
    reference = run(pair, data_dir).tasks[TASK]
    own = run(pair, data_dir, scoring="offsets", extraction_strength="strict", mia_sets="evaluated").tasks[TASK]
    assert (own["config"]["scoring"], own["config"]["extraction_strength"], own["config"]["mia_sets"]) == (
        "offsets", "strict", "evaluated")
    # offsets score the merged first token too: every forget answer's probability changes
    assert all(not math.isclose(a, b, rel_tol=1e-6)
               for a, b in zip(own["items"]["forget_prob"], reference["items"]["forget_prob"]))
    assert len(own["items"]["forget_min_k"]) == len(own["items"]["holdout_min_k"]) == LIMIT
    # strict ES over every token holding an answer character, k = n allowed: 0 when the last token is wrong
    forget = benchmark["forget01_perturbed"][:LIMIT]
    for row, value in zip(forget, own["items"]["forget_extraction_strength"]):
        prompt = PLAIN.format(q=row["question"])
        encoded = tokenizer(prompt + row["answer"], return_offsets_mapping=True)
        ids = encoded["input_ids"]
        first = next(i for i, (_, end) in enumerate(encoded["offset_mapping"]) if end > len(prompt))
        with torch.no_grad():
            predicted = model(torch.tensor([ids])).logits[0].argmax(-1).tolist()
        hits = [predicted[i - 1] == ids[i] for i in range(first, len(ids))]
        k = len(hits)
        while k > 0 and hits[k - 1]:
            k -= 1
        assert value == pytest.approx(1 - k / len(hits), abs=1e-12)
    with pytest.raises(TaskOptionError, match="scoring"):
        run(pair, data_dir, scoring="characters")


def test_a_prompt_that_does_not_merge_scores_the_same_tokens_both_ways(pair, data_dir):
    legacy = {"prompt_template": "[INST] {question} [/INST]"}
    reference = run(pair, data_dir, **legacy).tasks[TASK]["items"]
    offsets = run(pair, data_dir, scoring="offsets", **legacy).tasks[TASK]["items"]
    for key in ("forget_prob", "forget_truth_ratio_s", "retain_prob", "real_authors_prob"):
        assert reference[key] == pytest.approx(offsets[key], rel=1e-6), key


def test_a_reference_scored_the_other_way_is_refused(pair, data_dir):
    other = run(pair, data_dir, scoring="offsets")
    target = run(pair, data_dir)
    refused = mu_eval.evaluate((pair[1], pair[2]), [TASK], task_options={TASK: {"max_new_tokens": 4}},
                               data_dir=data_dir, limit=LIMIT, reference=other.data, progress=False)
    metrics = refused.tasks[TASK]["metrics"]
    assert metrics["forget_quality"]["value"] is None and "scoring=offsets" in metrics["forget_quality"]["reason"]
    accepted = mu_eval.evaluate((pair[1], pair[2]), [TASK], task_options={TASK: {"max_new_tokens": 4}},
                                data_dir=data_dir, limit=LIMIT, reference=target.data, progress=False)
    assert accepted.tasks[TASK]["metrics"]["forget_quality"]["value"] == pytest.approx(1.0)
