"""SURE: the saliency mask matches an independent computation of the forget gradient's row norms and their
90th percentile, and training changes exactly the salient rows and nothing else."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from methods_support import FORGET, split

from mu_eval.backends.hf_encoding import encode_score
from mu_eval.method import MethodOptionError
from mu_eval.methods.sure import SURE

FAST = {"batch_size": len(FORGET), "grad_accum_steps": 1, "warmup_ratio": 0.0, "lr": 1e-3}


def independent_mask(model, tokenizer, objective: str, q: float = 90.0) -> dict[str, torch.Tensor]:
    """Row norms of the forget-loss gradient, from each forget example scored alone; salient >= percentile.

    GA's loss is the token mean of -log p; at theta = theta_ref NPO's gradient is the sequence mean of
    grad log pi(y|x) (sigma(0) = 1/2 times 2), so its mask comes from the sequence mean of summed log-probs.
    """
    model.zero_grad(set_to_none=True)
    model.eval()
    token_logps, sequence_logps = [], []
    for example in FORGET:
        encoded = encode_score(tokenizer, example.prompt, example.answer, True, None)
        ids = torch.tensor([encoded.input_ids])
        logits = model(input_ids=ids).logits[0, encoded.start - 1 : -1]
        logp = torch.log_softmax(logits, -1)[torch.arange(len(ids[0]) - encoded.start), ids[0, encoded.start :]]
        token_logps.append(logp)
        sequence_logps.append(logp.sum())
    if objective == "ga":
        loss = -torch.cat(token_logps).mean()
    else:
        loss = -torch.stack(sequence_logps).mean()
    loss.backward()
    norms = {name: p.grad.norm(dim=1) for name, p in model.named_parameters() if p.dim() == 2}
    threshold = np.percentile(torch.cat(list(norms.values())).numpy(), q)
    model.zero_grad(set_to_none=True)
    return {name: (n >= threshold) & (n > 0) for name, n in norms.items()}



@pytest.mark.parametrize("objective", ["ga", "npo"])
def test_only_the_salient_rows_change(trained, objective):
    model, tokenizer = trained
    expected = independent_mask(model, tokenizer, objective)
    original = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    method = SURE(objective=objective, steps=3, **FAST)
    method.unlearn(model, tokenizer, split())
    assert set(method.masks) == set(expected)
    for name, rows in expected.items():
        assert torch.equal(method.masks[name], rows), f"{name}: mask differs from the independent one"
    total = sum(m.numel() for m in expected.values())
    selected = sum(int(m.sum()) for m in expected.values())
    assert 0.05 * total < selected <= 0.1 * total + 1
    assert method.info["salient_neurons"] == selected and method.info["neurons"] == total
    after = model.state_dict()
    for name, tensor in after.items():
        moved = (tensor != original[name])
        if name in expected:
            changed_rows = moved.any(dim=1)
            assert torch.equal(changed_rows, expected[name]), f"{name}: changed rows are not the salient rows"
        else:
            assert not moved.any(), f"{name} is not a neuron matrix and must not change"


def test_sure_defaults_and_option_errors():
    options = SURE().settings
    assert (options.objective, options.threshold, options.weight_decay, options.retain_loss) == ("ga", 90.0, 0.0, "nll")
    with pytest.raises(MethodOptionError, match="weight decay"):
        SURE(weight_decay=0.01)
    with pytest.raises(MethodOptionError, match="LoRA"):
        SURE(lora_r=8)
    with pytest.raises(MethodOptionError, match="choose ga, npo"):
        SURE(objective="dpo")
    with pytest.raises(MethodOptionError, match="percentile"):
        SURE(threshold=120)


def test_trainable_flags_are_restored(trained):
    model, tokenizer = trained
    model.model.norm.weight.requires_grad_(False)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    SURE(steps=1, **FAST).unlearn(model, tokenizer, split())
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
