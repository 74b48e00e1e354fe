"""The shared training loop's additions: gradient accumulation, paired streams, KL, the reference model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from methods_support import FORGET, RETAIN

from mu_eval.training import (
    TrainConfig,
    answer_logits,
    collate,
    encode_examples,
    kl_to_reference,
    paired_batches,
    train,
)
from mu_eval.training_models import Reference, add_lora, merge_lora


def one_step(accumulate: int, rows: list[torch.Tensor]) -> tuple[float, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    stream = iter(rows * 10)
    config = TrainConfig(steps=1, lr=0.1, grad_accum_steps=accumulate, progress=False, max_grad_norm=None)
    losses = train(model, lambda _s: model(next(stream)).pow(2).mean(), config)
    return losses[0], model.weight.detach().clone()


def test_gradient_accumulation_averages_micro_batches():
    """Two micro-batches of one row each take the same step, and report the same loss, as one batch of both."""
    data = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    whole_loss, whole_weight = one_step(1, [data])
    split_loss, split_weight = one_step(2, [data[:1], data[1:]])
    assert split_loss == pytest.approx(whole_loss)
    torch.testing.assert_close(split_weight, whole_weight)


def test_paired_batches_cycle_both_streams(trained):
    _, tokenizer = trained
    forget, retain = encode_examples(tokenizer, FORGET), encode_examples(tokenizer, RETAIN)
    stream = paired_batches(forget, retain, 2, seed=0)
    pairs = [next(stream) for _ in range(8)]
    assert all(f.input_ids.shape[0] in (1, 2) and r is not None for f, r in pairs)
    seen = {tuple(row[row != 0].tolist()) for _, r in pairs for row in r.input_ids}
    assert len(seen) == len(RETAIN), "every retain example comes round"
    forget_only = next(paired_batches(forget, [], 2, seed=0))
    assert forget_only[1] is None


def test_kl_to_reference_matches_torch_kl_div_on_answer_tokens(trained):
    model, tokenizer = trained
    batch = collate(encode_examples(tokenizer, RETAIN))
    with torch.no_grad():
        logits = answer_logits(model, batch)
    other = logits + torch.randn_like(logits)
    mask = batch.labels[:, 1:] != -100
    expected = F.kl_div(
        torch.log_softmax(logits, -1), torch.log_softmax(other, -1), log_target=True, reduction="none"
    ).sum(-1)[mask].mean()
    assert float(kl_to_reference(logits, other, batch)) == pytest.approx(float(expected), rel=1e-5)
    assert float(kl_to_reference(logits, logits, batch)) == pytest.approx(0.0, abs=1e-6)


def test_reference_shares_weights_under_lora_and_ignores_adapters(trained):
    model, tokenizer = trained
    batch = collate(encode_examples(tokenizer, FORGET))
    with torch.no_grad():
        before = answer_logits(model.eval(), batch)
    wrapped = add_lora(model, r=4, alpha=8)
    reference = Reference(wrapped)
    assert reference.shared and reference.model is wrapped
    with torch.no_grad():
        for name, parameter in wrapped.named_parameters():
            if "lora_B" in name:
                parameter.add_(0.5)  # adapters now change the output
        assert not torch.allclose(answer_logits(wrapped, batch), before)
    torch.testing.assert_close(reference.logits(batch), before)
    merged = merge_lora(wrapped)
    assert "lora" not in " ".join(name for name, _ in merged.named_parameters())


def test_frozen_reference_is_a_copy_without_gradients(trained):
    model, _ = trained
    reference = Reference(model)
    assert not reference.shared and reference.model is not model
    assert not any(p.requires_grad for p in reference.model.parameters())


def test_long_answers_keep_their_first_tokens_and_long_prompts_lose_their_start(trained):
    from mu_eval.task import TextExample

    _, tokenizer = trained
    document = TextExample("", "The sky is blue on a clear day. " * 20)
    encoded = encode_examples(tokenizer, [document], max_length=16)[0]
    full = encode_examples(tokenizer, [document])[0]
    assert len(encoded.input_ids) == 16 and encoded.input_ids == full.input_ids[:16] and encoded.start == 1
    question = TextExample("Question: " + "tell me " * 30, "Paris.")
    cut = encode_examples(tokenizer, [question], max_length=12)[0]
    whole = encode_examples(tokenizer, [question])[0]
    assert len(cut.input_ids) == 12 and cut.input_ids[cut.start :] == whole.input_ids[whole.start :]
