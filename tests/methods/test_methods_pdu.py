"""PDU: epsilon is required, and the dual variable follows lambda <- max(0, lambda + eta (L_retain - epsilon))
after its warm-up, checked against a hand computation on a model that does not move (lr 0), whose retain
loss is then known in advance."""

from __future__ import annotations

import math

import pytest
from methods_support import FORGET, RETAIN, answer_tokens, split

from mu_eval.method import MethodOptionError
from mu_eval.methods.pdu import PDU
from mu_eval.unlearning import validate_method

#: Every batch holds the whole forget set (3) and the whole retain set (7).
WHOLE = {"batch_size": len(RETAIN), "grad_accum_steps": 1, "warmup_ratio": 0.0}


def retain_nll(model, tokenizer) -> float:
    """Mean cross-entropy over every retain answer token, from per-token loops."""
    losses = []
    for logits, targets in answer_tokens(model, tokenizer, RETAIN):
        for z, y in zip(logits, targets):
            values = [float(v) for v in z]
            losses.append(math.log(sum(math.exp(v) for v in values)) - values[int(y)])
    return sum(losses) / len(losses)


def forget_flatness(model, tokenizer) -> float:
    margins = [(float(z.max()) - float(z.mean())) ** 2
               for logits, _ in answer_tokens(model, tokenizer, FORGET) for z in logits]
    return sum(margins) / len(margins)


def hand_trajectory(start: float, loss: float, epsilon: float, eta: float, warmup: int, steps: int) -> list[float]:
    dual, out = start, []
    for step in range(steps):
        if step >= warmup:
            dual = max(0.0, dual + eta * (loss - epsilon))
        out.append(dual)
    return out


def test_epsilon_is_required_with_a_clear_message():
    with pytest.raises(MethodOptionError, match="needs epsilon, the bound on the retain NLL"):
        PDU()
    with pytest.raises(MethodOptionError, match="needs epsilon"):
        validate_method("pdu", {"lr": "1e-5"})  # what the command line checks before loading a model
    validate_method("pdu", {"epsilon": "0.3"})
    with pytest.raises(MethodOptionError, match="must be >= 0"):
        PDU(epsilon=-0.1)
    with pytest.raises(MethodOptionError, match="retain_loss cannot be none"):
        PDU(epsilon=0.1, retain_loss="none")


def test_defaults_follow_the_recipe():
    options = PDU(epsilon=0.5).settings
    assert (options.dual_step_size, options.dual_warmup_epochs, options.retain_weight) == (1.0, 5.0, 1.0)


#: epsilon = scale * L_retain + offset: lambda rises (below the loss) or falls to the clip at 0 (above it).
CASES = [(0.0, 0.0, 40.0, 1.0, 4.0), (1.0, 0.35, 1.0, 1.0, 2.0), (0.5, 0.0, 100.0, 0.0, 0.0)]


@pytest.mark.parametrize(("scale", "offset", "eta", "start", "warmup_epochs"), CASES)
def test_dual_variable_follows_the_update_rule_after_warmup(trained, scale, offset, eta, start, warmup_epochs):
    model, tokenizer = trained
    loss = retain_nll(model, tokenizer)
    epsilon = scale * loss + offset
    warmup = math.ceil(warmup_epochs * len(FORGET) / len(RETAIN))  # steps per epoch: 3 forget / 7 per batch
    steps = 6
    method = PDU(epsilon=epsilon, dual_step_size=eta, retain_weight=start, dual_warmup_epochs=warmup_epochs,
                 steps=steps, lr=0.0, **WHOLE)
    method.unlearn(model, tokenizer, split())
    expected = hand_trajectory(start, loss, epsilon, eta, warmup, steps)
    assert method.info["dual_warmup_steps"] == warmup
    assert method.retain_history == pytest.approx([loss] * steps, rel=1e-4)
    assert method.dual_history == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert method.info["dual_last"] == pytest.approx(expected[-1], rel=1e-4, abs=1e-7)
    assert max(expected) - min(expected) > 0.3, "the case must move lambda visibly"


def test_first_loss_is_the_lagrangian(trained):
    model, tokenizer = trained
    flat, loss = forget_flatness(model, tokenizer), retain_nll(model, tokenizer)
    method = PDU(epsilon=0.05, retain_weight=0.7, forget_weight=0.5, steps=1, lr=1e-3, **WHOLE)
    method.unlearn(model, tokenizer, split())
    assert method.info["first_loss"] == pytest.approx(0.5 * flat + 0.7 * (loss - 0.05), rel=1e-4)


def test_dual_updates_while_training_use_each_step_retain_loss(trained):
    model, tokenizer = trained
    start_loss = retain_nll(model, tokenizer)
    method = PDU(epsilon=0.01, dual_warmup_epochs=0.0, steps=8, lr=1e-3, **WHOLE)
    method.unlearn(model, tokenizer, split())
    assert method.retain_history[0] == pytest.approx(start_loss, rel=1e-4)
    dual = 1.0
    for retain, recorded in zip(method.retain_history, method.dual_history):
        dual = max(0.0, dual + (retain - 0.01))
        assert recorded == pytest.approx(dual, rel=1e-5, abs=1e-7)
