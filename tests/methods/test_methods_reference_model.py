"""`reference_model=PATH`: the reference terms read another checkpoint instead of the model before unlearning
(MLLMU-Bench's NPO uses an "oracle" fine-tuned on the retain set)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from methods_support import FORGET, answer_tokens, split

from mu_eval.method import MethodError, MethodOptionError
from mu_eval.methods.gradient import GradAscent
from mu_eval.methods.npo import NPO

ONE_STEP = {"steps": 1, "batch_size": len(FORGET), "grad_accum_steps": 1, "warmup_ratio": 0.0, "lr": 1e-3}


def sequence_logprobs(model, tokenizer) -> torch.Tensor:
    """Sum of log p over each forget answer's tokens (EOS included), each example scored alone."""
    sums = [torch.log_softmax(logits, -1)[torch.arange(len(tokens)), tokens].sum()
            for logits, tokens in answer_tokens(model, tokenizer, FORGET)]
    return torch.stack(sums)


def test_npo_first_loss_uses_the_reference_checkpoint(trained, tiny_checkpoint):
    """The trained model against the untrained checkpoint: the log-ratios are far from 0, so the first loss
    is no longer (2/beta) ln 2, and equals the NPO formula with that checkpoint's log-probs."""
    from transformers import AutoModelForCausalLM

    model, tokenizer = trained
    beta = 0.5
    ratio = sequence_logprobs(model, tokenizer) - sequence_logprobs(
        AutoModelForCausalLM.from_pretrained(tiny_checkpoint), tokenizer)
    assert float(ratio.abs().min()) > 1.0, "the two checkpoints must differ for this test to mean anything"
    expected = float(-(2.0 / beta) * F.logsigmoid(-beta * ratio).mean())
    method = NPO(retain_loss="none", beta=beta, reference_model=str(tiny_checkpoint), **ONE_STEP)
    method.unlearn(model, tokenizer, split())
    assert method.info["first_loss"] == pytest.approx(expected, rel=1e-4)
    assert method.info["first_loss"] != pytest.approx(2 / beta * torch.log(torch.tensor(2.0)).item(), rel=1e-2)


def test_reference_model_errors(trained, tmp_path):
    model, tokenizer = trained
    with pytest.raises(MethodOptionError, match="does not exist"):
        NPO(reference_model=str(tmp_path / "missing"))
    with pytest.raises(MethodError, match="no reference term"):
        GradAscent(reference_model=str(tmp_path), **ONE_STEP).unlearn(model, tokenizer, split())
    with pytest.raises(MethodError, match="reference_model="):
        NPO(retain_loss="none", reference_model=str(tmp_path), **ONE_STEP).unlearn(model, tokenizer, split())
