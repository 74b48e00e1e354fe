"""A pad token (distinct from EOS) generated mid-answer is skipped, as MUSE's and open-unlearning's code skip
it (they decode with skip_special_tokens and stop at EOS only), and generation goes on to EOS.

The model is a real tiny Llama whose layers write nothing into the residual stream, so each next token is a
function of the current one, and whose output head is set so that the prompt's last token is followed by
PAD, then two words, then EOS.
"""

from __future__ import annotations

import pytest
import torch
from support import TRAINING_TEXTS

from mu_eval.backends.hf import HFBackend
from mu_eval.requests import Generate
from mu_eval.tiny import build_model, build_tokenizer

PROMPT = "Question: Who wrote Hamlet?\nAnswer:"


@pytest.fixture(scope="module")
def chained():
    tokenizer = build_tokenizer(TRAINING_TEXTS, vocab_size=600)
    model = build_model(len(tokenizer), seed=4, tokenizer=tokenizer)
    last = tokenizer(PROMPT)["input_ids"][-1]
    words = tokenizer(" William Shakespeare", add_special_tokens=False)["input_ids"]
    chain = [last, tokenizer.pad_token_id, *words, tokenizer.eos_token_id]
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        embeddings[tokenizer.pad_token_id] = torch.randn(embeddings.shape[1])  # padding_idx left it at zero
        hidden = model.model.norm(embeddings)  # what the head sees after each token
        head = model.lm_head.weight
        head.mul_(0.01)
        for current, following in zip(chain, chain[1:]):
            head[following] += 40 * hidden[current] / hidden[current].norm() ** 2
    return model.eval(), tokenizer, words


def muse_generate(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    """MUSE's loop: one prompt, greedy, pad_token_id given, decoded with skip_special_tokens."""
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=True).input_ids
    with torch.no_grad():
        output = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id)
    return tokenizer.batch_decode(output[:, ids.shape[1]:], skip_special_tokens=True)[0]


def test_a_pad_mid_answer_is_skipped_not_an_end(chained):
    model, tokenizer, words = chained
    new = model.generate(tokenizer(PROMPT, return_tensors="pt").input_ids, max_new_tokens=8, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)[0, -len(words) - 2:].tolist()
    assert new == [tokenizer.pad_token_id, *words, tokenizer.eos_token_id]  # the premise: PAD comes first
    expected = muse_generate(model, tokenizer, PROMPT, 8)
    assert expected == tokenizer.decode(words) and expected.strip() == "William Shakespeare"
    backend = HFBackend.from_model(model, tokenizer)
    other = "The quick brown fox jumps over the lazy dog."  # a longer prompt: PROMPT is left-padded
    alone, = backend.generate([Generate(PROMPT, 8)])
    together = backend.generate([Generate(PROMPT, 8), Generate(other, 8)])
    assert alone.text == together[0].text == expected
    assert alone.num_new_tokens == len(words)
    assert together[1].text == muse_generate(model, tokenizer, other, 8)
