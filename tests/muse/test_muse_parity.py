"""muse_news against MUSE's own evaluation, restated in this file from the formulas of its code, on the same
tiny models and the real MUSE-News files: VerbMem and KnowMem ROUGE-L F1, Min-40% AUC and PrivLeak.

The restatement runs MUSE's way: one prompt at a time, greedy `generate` with the tokenizer's pad token,
`batch_decode(skip_special_tokens=True, clean_up_tokenization_spaces=True)`; the VerbMem gold cut to its
first 128 tokens (BOS included); KnowMem cut at "\\n\\n", "\\nQuestion", "Question:"; Min-40% as
-mean of the int(0.4 T) lowest log-probs of tokenizer.encode(text)[1:]; AUC as MUSE sweeps it (forget
labelled 0, scores -Min-40%) and PrivLeak = (AUC - AUC_retrain) / AUC_retrain x 100 in that orientation,
with MUSE's published AUC_retrain. Two tokenizers: byte-level with BOS, and SentencePiece-style without
BOS (where MUSE leaves each text's first token unscored).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rouge_score import rouge_scorer
from sklearn.metrics import auc as area
from sklearn.metrics import roc_curve
from tokenizer_kinds import sentencepiece_tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer

import mu_eval

LIMIT = 3
MUSE_RETRAIN_AUC_NEWS = 0.4772  # published, MUSE's orientation
STOPS = ("\n\n", "\nQuestion", "Question:")


def texts_of(muse_news_dir):
    texts = json.loads((muse_news_dir / "privleak" / "forget.json").read_text())[:4]
    texts += [r["prompt"] + r["gt"] for r in json.loads((muse_news_dir / "verbmem" / "forget.json").read_text())[:4]]
    for name in ("forget_qa", "forget_qa_icl", "retain2_qa", "retain2_qa_icl"):
        texts += [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in
                  json.loads((muse_news_dir / "knowmem" / f"{name}.json").read_text())]
    return texts


@pytest.fixture(scope="module")
def sentencepiece_checkpoint(muse_news_dir, tmp_path_factory):
    from mu_eval.tiny import build_model, save

    tokenizer = sentencepiece_tokenizer(texts_of(muse_news_dir), vocab_size=2048, bos=False)
    model = build_model(len(tokenizer), max_position_embeddings=4096, seed=9, tokenizer=tokenizer)
    return save(model, tokenizer, tmp_path_factory.mktemp("muse-sp") / "model")


class Muse:
    """MUSE's metrics, restated."""

    def __init__(self, checkpoint):
        self.model = AutoModelForCausalLM.from_pretrained(checkpoint).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        self.scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

    def decode(self, ids) -> str:
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)[0]

    def generate(self, prompt: str, max_new_tokens: int) -> str:
        ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=True).input_ids
        with torch.no_grad():
            output = self.model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                         pad_token_id=self.tokenizer.pad_token_id)
        return self.decode(output[:, ids.shape[1]:])

    def verbmem(self, rows) -> float:
        scores = []
        for row in rows:
            gold_ids = self.tokenizer(row["gt"], return_tensors="pt", add_special_tokens=True).input_ids
            gold = self.decode(gold_ids[:, :128])
            scores.append(self.scorer.score(gold, self.generate(row["prompt"], 128))["rougeL"].fmeasure)
        return 100 * float(np.mean(scores))

    def knowmem(self, icl, rows) -> float:
        shots = "".join(f"Question: {q['question']}\nAnswer: {q['answer']}\n\n" for q in icl)
        scores = []
        for row in rows:
            output = self.generate(shots + f"Question: {row['question']}\nAnswer: ", 32)
            for stop in STOPS:
                output = output.split(stop)[0]
            scores.append(self.scorer.score(row["answer"], output)["rougeL"].fmeasure)
        return 100 * float(np.mean(scores))

    def min_40(self, text: str) -> float:
        ids = torch.tensor(self.tokenizer.encode(text)).unsqueeze(0)
        with torch.no_grad():
            logp = torch.log_softmax(self.model(ids).logits, dim=-1)
        probs = [logp[0, i, token].item() for i, token in enumerate(ids[0][1:])]
        return float(-np.mean(np.sort(probs)[: int(len(probs) * 0.4)]))

    def auc(self, forget, holdout) -> float:
        """MUSE's forget_holdout_Min-40%: forget labelled 0 ("nonmember"), holdout 1, scores -Min-40%."""
        scores = np.array([self.min_40(t) for t in forget] + [self.min_40(t) for t in holdout])
        labels = np.array([0] * len(forget) + [1] * len(holdout))
        fpr, tpr, _ = roc_curve(labels, -scores)
        return float(area(fpr, tpr))


@pytest.mark.parametrize("checkpoint_fixture", ["muse_checkpoint", "sentencepiece_checkpoint"])
def test_muse_news_equals_muse_formulas(checkpoint_fixture, request, muse_news_dir):
    checkpoint = request.getfixturevalue(checkpoint_fixture)
    muse = Muse(checkpoint)
    adds_bos = muse.tokenizer("a")["input_ids"][0] == muse.tokenizer.bos_token_id
    assert adds_bos == (checkpoint_fixture == "muse_checkpoint")
    report = mu_eval.evaluate(str(checkpoint), ["muse_news"], data_dir=muse_news_dir, limit=LIMIT, use_cache=False,
                              progress=False)
    metrics = report.tasks["muse_news"]["metrics"]

    def rows(*parts):
        return json.loads(muse_news_dir.joinpath(*parts).read_text())

    assert metrics["verbmem_f"]["value"] == pytest.approx(muse.verbmem(rows("verbmem", "forget.json")[:LIMIT]),
                                                          abs=1e-9)
    for key, name in (("knowmem_f", "forget_qa"), ("knowmem_r", "retain2_qa")):
        expected = muse.knowmem(rows("knowmem", f"{name}_icl.json"), rows("knowmem", f"{name}.json")[:LIMIT])
        assert metrics[key]["value"] == pytest.approx(expected, abs=1e-9), key
    forget, holdout = rows("privleak", "forget.json")[:LIMIT], rows("privleak", "holdout.json")[:LIMIT]
    items = report.tasks["muse_news"]["items"]  # Min-40% per text, kept as the mean itself (higher = member)
    assert [-v for v in items["privleak_forget_mink40"]] == pytest.approx([muse.min_40(t) for t in forget], abs=1e-4)
    assert [-v for v in items["privleak_holdout_mink40"]] == pytest.approx([muse.min_40(t) for t in holdout], abs=1e-4)
    auc_muse = muse.auc(forget, holdout)
    assert report.tasks["muse_news"]["info"]["privleak"]["auc_muse_orientation"] == pytest.approx(auc_muse, abs=1e-9)
    leak = (auc_muse - MUSE_RETRAIN_AUC_NEWS) / MUSE_RETRAIN_AUC_NEWS * 100
    assert metrics["privleak"]["value"] == pytest.approx(leak, abs=1e-6)
