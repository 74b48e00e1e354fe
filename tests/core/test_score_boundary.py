"""Score's two boundaries against an independent restatement of the reference rule, on a byte-level and a
SentencePiece-style tokenizer, for prompts whose trailing space merges into the answer and prompts that do not.

The reference rule (TOFU, open-unlearning, lm-evaluation-harness): tokenize prompt + answer and the prompt
alone, both with the tokenizer's special tokens; the scored tokens are the joint ones after len(prompt ids),
then an EOS unless the joint text already ends with one. MUSE scores every token after the first.
"""

from __future__ import annotations

import pytest
import torch
from tokenizer_kinds import KINDS, make_tokenizer, model_for

from mu_eval.backends.hf import HFBackend
from mu_eval.requests import Score

QA = [
    ("Who wrote Hamlet?", "William Shakespeare wrote Hamlet."),
    ("What do bees make?", "Bees make honey from the nectar of flowers."),
    ("Where is the Eiffel Tower?", "The Eiffel Tower stands in Paris."),
]
MERGING = "Question: {q}\nAnswer: "  # the trailing space joins the answer's first word
KEEPING = "[INST] {q} [/INST]"  # nothing joins across "]"
TEXTS = [f"Question: {q}\nAnswer: {a}" for q, a in QA] * 30 + [f"[INST] {q} [/INST] {a}" for q, a in QA] * 30


@pytest.fixture(scope="module", params=KINDS)
def kind_backend(request):
    tokenizer = make_tokenizer(request.param, TEXTS)
    model = model_for(tokenizer, seed=5)
    return request.param, HFBackend.from_model(model, tokenizer)


def reference_tokens(model, tokenizer, prompt: str, answer: str, append_eos: bool) -> list[tuple[float, bool]]:
    """(log p, argmax hit) of each scored token under the reference rule, from one full forward pass."""
    full = tokenizer(prompt + answer)["input_ids"]
    prompt_length = len(tokenizer(prompt)["input_ids"])
    if append_eos and full[-1] != tokenizer.eos_token_id:
        full = full + [tokenizer.eos_token_id]
    labels = [-100] * prompt_length + full[prompt_length:]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full])).logits[0].double(), dim=-1)
    return [(float(logp[i - 1, full[i]]), int(logp[i - 1].argmax()) == full[i])
            for i in range(1, len(full)) if labels[i] != -100]


def offset_count(tokenizer, prompt: str, answer: str) -> int:
    offsets = tokenizer(prompt + answer, return_offsets_mapping=True)["offset_mapping"]
    return sum(1 for _, end in offsets if end > len(prompt))


@pytest.mark.parametrize("template", [MERGING, KEEPING])
def test_prefix_boundary_scores_the_reference_tokens(kind_backend, template):
    kind, backend = kind_backend
    model, tokenizer = backend.torch_model, backend.tokenizer
    requests = [Score(template.format(q=q), a, True, "prefix") for q, a in QA]
    offsets = backend.score([Score(r.context, r.continuation, True) for r in requests])
    for request, answer, by_offsets in zip(requests, backend.score(requests), offsets):
        expected = reference_tokens(model, tokenizer, request.context, request.continuation, True)
        assert len(answer.logprobs) == len(expected)
        assert list(answer.logprobs) == pytest.approx([e[0] for e in expected], abs=1e-4)
        assert list(answer.greedy) == [e[1] for e in expected]
        assert answer.eos_appended
        # the premise, checked on this tokenizer: a trailing space merges, "]" does not
        merged = offset_count(tokenizer, request.context, request.continuation) - (len(expected) - 1)
        assert merged == (1 if template == MERGING else 0), (kind, request)
        assert len(by_offsets.logprobs) == len(answer.logprobs) + merged
        if not merged:
            assert list(by_offsets.logprobs) == pytest.approx(list(answer.logprobs), abs=1e-5)


@pytest.mark.parametrize("bos", [True, False])
def test_empty_context_prefix_skips_the_first_token_as_muse(bos):
    """MUSE scores tokenizer(text)[1:]: the BOS's successor onwards, or, without a BOS, all but the first token;
    offsets place a BOS/EOS before a text whose tokenizer adds none and score every token."""
    for kind in KINDS:
        tokenizer = make_tokenizer(kind, TEXTS, bos=bos)
        model = model_for(tokenizer, seed=2)
        backend = HFBackend.from_model(model, tokenizer)
        text = "The Eiffel Tower stands in Paris."
        ids = tokenizer(text)["input_ids"]
        assert (ids[0] == tokenizer.bos_token_id) == bos
        prefix, offsets = backend.score([Score("", text, boundary="prefix"), Score("", text)])
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
        muse = [float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]
        assert list(prefix.logprobs) == pytest.approx(muse, abs=1e-4)
        assert len(offsets.logprobs) == len(ids) - (1 if bos else 0)


def test_an_unknown_boundary_is_refused():
    with pytest.raises(ValueError, match="offsets, prefix"):
        Score("a", "b", boundary="characters")
