"""Each loss checked against an independent computation at the first step, where the model still equals
its reference, and each update touches only what it should."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from methods_support import FORGET, forget_retain, split

from mu_eval.backends.hf_encoding import encode_score
from mu_eval.methods.dpo import IdkDPO
from mu_eval.methods.gradient import GradAscent, KLMin
from mu_eval.methods.npo import NPO, SimNPO
from mu_eval.methods.rmu import RMU
from mu_eval.methods.task_vector import TaskVector
from mu_eval.methods.undial import UNDIAL

ONE_STEP = {"steps": 1, "batch_size": len(FORGET), "grad_accum_steps": 1, "warmup_ratio": 0.0, "lr": 1e-3}


@torch.no_grad()
def per_example(model, tokenizer):
    """(log-probs of the answer tokens, logits predicting them) of each forget example, one at a time."""
    model.eval()
    out = []
    for example in FORGET:
        encoded = encode_score(tokenizer, example.prompt, example.answer, True, None)
        ids = torch.tensor([encoded.input_ids])
        logits = model(input_ids=ids).logits[0, encoded.start - 1 : -1].float()
        targets = ids[0, encoded.start :]
        logp = torch.log_softmax(logits, -1)[torch.arange(len(targets)), targets]
        out.append((logp, logits, targets))
    return out


def test_grad_ascent_first_loss_is_minus_token_nll(trained):
    model, tokenizer = trained
    tokens = per_example(model, tokenizer)
    expected = float(torch.cat([logp for logp, _, _ in tokens]).mean())
    method = GradAscent(**ONE_STEP)
    method.unlearn(model, tokenizer, split())
    assert method.info["first_loss"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("method_class", [NPO, IdkDPO])
def test_preference_losses_start_at_two_over_beta_log_two(method_class, trained):
    """With theta = theta_ref every log-ratio is 0: -(2/beta) log sigmoid(0) = (2/beta) ln 2."""
    model, tokenizer = trained
    method = method_class(retain_loss="none", beta=0.25, **ONE_STEP)
    method.unlearn(model, tokenizer, split())
    assert method.info["first_loss"] == pytest.approx(2 / 0.25 * math.log(2), rel=1e-5)


def test_simnpo_first_loss_matches_length_normalised_formula(trained):
    model, tokenizer = trained
    beta, margin, weight = 4.5, 0.3, 0.125
    terms = []
    for logp, _, _ in per_example(model, tokenizer):
        terms.append(-(2 / beta) * math.log(1 / (1 + math.exp(beta / len(logp) * float(logp.sum()) + margin))))
    method = SimNPO(retain_loss="none", margin=margin, **ONE_STEP)
    method.unlearn(model, tokenizer, split())
    assert method.info["first_loss"] == pytest.approx(weight * sum(terms) / len(terms), rel=1e-4)


def test_undial_first_loss_is_soft_cross_entropy_on_answer_tokens(trained):
    model, tokenizer = trained
    beta = 3.0
    losses = []
    for _, logits, targets in per_example(model, tokenizer):
        lowered = logits.clone()
        lowered[torch.arange(len(targets)), targets] -= beta
        losses.append(F.cross_entropy(logits, torch.softmax(lowered, -1), reduction="none"))
    expected = float(torch.cat(losses).mean())
    method = UNDIAL(beta=beta, **ONE_STEP)  # LoRA B starts at zero: the student equals the reference
    method.unlearn(model, tokenizer, split())
    assert method.info["first_loss"] == pytest.approx(expected, rel=1e-4)


def test_kl_min_retain_term_is_zero_before_the_first_update(trained):
    model, tokenizer = trained
    tokens = per_example(model, tokenizer)
    expected = float(torch.cat([logp for logp, _, _ in tokens]).mean())
    method = KLMin(**ONE_STEP)
    method.unlearn(model, tokenizer, split())
    assert method.info["first_loss"] == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_rmu_first_loss_and_only_chosen_projections_move(trained):
    model, tokenizer = trained
    original = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    coefficient = 5.0
    direction = torch.rand(model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    control = coefficient * direction / direction.norm()
    squared = []
    with torch.no_grad():
        for example in FORGET:
            encoded = encode_score(tokenizer, example.prompt, example.answer, True, None)
            hidden = model(input_ids=torch.tensor([encoded.input_ids]), output_hidden_states=True).hidden_states[1]
            squared.append(((hidden[0, encoded.start :] - control) ** 2).mean(-1))
    expected = float(torch.cat(squared).mean())
    method = RMU(layer=0, steering_coeff=coefficient, **ONE_STEP)
    method.unlearn(model, tokenizer, split())
    assert method.info["first_loss"] == pytest.approx(expected, rel=1e-4)
    assert method.info["update_layers"] == [0]
    changed = {name for name, tensor in model.state_dict().items() if not torch.equal(tensor, original[name])}
    assert changed == {"model.layers.0.mlp.down_proj.weight"}


def test_rmu_rejects_a_layer_the_model_does_not_have(trained):
    from mu_eval.method import MethodError

    model, tokenizer = trained
    with pytest.raises(MethodError, match="does not exist"):
        RMU(layer=5).unlearn(model, tokenizer, split())


def test_task_vector_is_linear_in_alpha(trained_checkpoint):
    """theta - alpha (theta_ft - theta): alpha 2 moves twice as far as alpha 1 from the same theta_ft."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(trained_checkpoint)
    start = AutoModelForCausalLM.from_pretrained(trained_checkpoint).state_dict()
    moved = {}
    for alpha in (1.0, 2.0):
        model = AutoModelForCausalLM.from_pretrained(trained_checkpoint)
        options = dict(ONE_STEP, steps=3)
        TaskVector(alpha=alpha, **options).unlearn(model, tokenizer, split())
        moved[alpha] = model.state_dict()
    name = "model.layers.0.self_attn.q_proj.weight"
    step_one = moved[1.0][name] - start[name]
    assert step_one.abs().max() > 0
    torch.testing.assert_close(moved[2.0][name] - start[name], 2 * step_one, rtol=1e-4, atol=1e-6)


def test_lora_run_merges_back_into_a_plain_model(trained, before):
    model, tokenizer = trained
    original = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    options = dict(ONE_STEP, steps=20, lr=2e-3)
    unlearned = NPO(lora_r=8, lora_targets="q_proj;v_proj", **options).unlearn(model, tokenizer, split())
    assert type(unlearned).__name__ == "LlamaForCausalLM"
    state = unlearned.state_dict()
    assert set(state) == set(original)
    changed = {name for name, tensor in state.items() if not torch.equal(tensor, original[name])}
    assert changed and all(name.endswith(("q_proj.weight", "v_proj.weight")) for name in changed)
    forget, retain = forget_retain(unlearned, tokenizer)
    assert forget < 0.5 * before[0] and retain > 0.6
