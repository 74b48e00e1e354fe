"""TOFU's texts longer than open-unlearning's 512 tokens: cut as open-unlearning's QA dataset cuts them
(prompt + answer and prompt tokenized with truncation to 512, EOS appended), counted in `info.truncated`; and
with a chat template, where open-unlearning cuts nothing, such a text is an error before any model work."""

from __future__ import annotations

import json
import math

import pytest
import torch
from support import TRAINING_TEXTS

import mu_eval
from mu_eval.backend import ContextLengthError
from mu_eval.tasks.synthetic_profiles.generator import write_benchmark

TASK = "tofu_forget01"
CAP = 512
LONG_ANSWER = "The author wrote many books about the sea and the sky. " * 60


@pytest.fixture(scope="module")
def long_context_checkpoint(tmp_path_factory):
    """A tiny Llama with 1024 positions: a text cut to 512 tokens plus EOS fits."""
    from mu_eval.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tofu-1024") / "model", TRAINING_TEXTS, seed=2,
                                 vocab_size=600, max_position_embeddings=1024)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The synthetic benchmark in TOFU's files, the first forget answer made longer than 512 tokens."""
    directory = tmp_path_factory.mktemp("tofu-long")
    write_benchmark(directory, people=10, seed=3)
    path = directory / "forget01_perturbed.json"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["answer"] = LONG_ANSWER
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return directory


def open_unlearning_prob(model, tokenizer, prompt: str, answer: str) -> float:
    """open-unlearning's Prob of one QA item without a chat template, restated: both texts tokenized with
    truncation at 512, EOS appended unless last, labels after len(prompt ids), exp(-mean NLL)."""
    chat = tokenizer(prompt + answer, add_special_tokens=True, max_length=CAP, truncation=True)["input_ids"]
    if chat[-1] != tokenizer.eos_token_id:
        chat = chat + [tokenizer.eos_token_id]
    prompt_ids = tokenizer(prompt, add_special_tokens=True, max_length=CAP, truncation=True)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([chat])).logits[0].float()
    logp = torch.log_softmax(logits[len(prompt_ids) - 1 : len(chat) - 1], -1)
    labels = torch.tensor(chat[len(prompt_ids):])
    return math.exp(logp[torch.arange(len(labels)), labels].mean().item())


def test_a_text_past_512_tokens_is_cut_as_open_unlearning_cuts_it(long_context_checkpoint, data_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    report = mu_eval.evaluate(str(long_context_checkpoint), [TASK], task_options={TASK: {"max_new_tokens": 4}},
                              data_dir=data_dir, limit=2, use_cache=False, progress=False)
    tokenizer = AutoTokenizer.from_pretrained(long_context_checkpoint)
    model = AutoModelForCausalLM.from_pretrained(long_context_checkpoint).eval()
    row = json.loads((data_dir / "forget01_perturbed.json").read_text().splitlines()[0])
    prompt = f"Question: {row['question']}\nAnswer: "
    assert len(tokenizer(prompt + row["answer"])["input_ids"]) > CAP  # the cut happens
    expected = open_unlearning_prob(model, tokenizer, prompt, row["answer"])
    assert report.tasks[TASK]["items"]["forget_prob"][0] == pytest.approx(expected, rel=1e-4)
    # one distinct text is longer than 512 tokens (the MIA set scores the same answer: one request)
    assert report.tasks[TASK]["info"]["truncated"] == 1
    assert report["engine"]["truncated"] == 1


def test_with_a_chat_template_nothing_is_cut_and_a_text_too_long_for_the_model_is_an_error(
    long_context_checkpoint, data_dir, tmp_path
):
    """open-unlearning applies no truncation to chat-template items: a text longer than the model's
    context (here max_length=300) stops the run, naming the task and the lengths."""
    from transformers import AutoTokenizer

    from mu_eval.tiny import TINY_CHAT_TEMPLATE

    templated = tmp_path / "templated"
    tokenizer = AutoTokenizer.from_pretrained(long_context_checkpoint)
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(long_context_checkpoint).save_pretrained(templated)
    tokenizer.save_pretrained(templated)
    with pytest.raises(ContextLengthError, match=r"^task 'tofu_forget01': request 1 of \d+ \(score, .*more than the "
                                                 r"model's context of 300 \(the benchmark defines no truncation\)"):
        mu_eval.evaluate(str(templated), [TASK], task_options={TASK: {"max_new_tokens": 4}},
                         model_args={"max_length": 300}, data_dir=data_dir, limit=2, use_cache=False, progress=False)
