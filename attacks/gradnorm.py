"""Gradient-norm membership score: s = -mean over parameter tensors of ||grad NLL(x)||_2, one text per pass.

The model stays in eval mode (no dropout noise in the score), gradients are enabled only here, and the
model is handed back exactly as it came: train/eval mode, `requires_grad` flags and any gradients the
caller had accumulated (open-unlearning switches to train() and wipes them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from mu_eval.backends.hf_encoding import encode_score
from mu_eval.requests import Score
from mu_eval.training import collate, nll_loss


def gradient_norm_scores(
    model: Any,
    tokenizer: Any,
    requests: Sequence[Score],
    include_eos: bool = False,
    max_length: int | None = None,
    progress: bool = True,
) -> list[float]:
    """Member-oriented gradient-norm scores, in the order of `requests` (NaN for a text with no token)."""
    params = [p for p in model.parameters() if p.is_floating_point()]
    flags = [p.requires_grad for p in params]
    saved = [p.grad for p in params]
    was_training = model.training
    device = next(model.parameters()).device
    scores: list[float] = []
    try:
        for p in params:
            p.grad = None
            p.requires_grad_(True)
        model.eval()
        for request in tqdm(requests, desc="gradient norms", unit="text", disable=not progress):
            append_eos = request.append_eos and include_eos
            encoded = encode_score(tokenizer, request.context, request.continuation, append_eos, max_length,
                                   request.boundary)
            if encoded.start >= len(encoded.input_ids):
                scores.append(math.nan)
                continue
            batch = collate([encoded]).to(device)
            with torch.enable_grad():
                loss = nll_loss(model, batch)
                loss.backward()
            norms = [p.grad.detach().float().norm() for p in params if p.grad is not None]
            scores.append(-float(torch.stack(norms).mean()) if norms else math.nan)
            for p in params:
                p.grad = None
    finally:
        for p, flag, grad in zip(params, flags, saved):
            p.requires_grad_(flag)
            p.grad = grad
        model.train(was_training)
    return scores
