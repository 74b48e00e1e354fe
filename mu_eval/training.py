"""The one training loop shared by the demo, the unlearning methods and the relearning attack.

Examples are tokenised exactly as the harness scores them (prompt and answer together, the answer found
by offsets, EOS appended), so a model trained here is evaluated on the same token boundaries.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from mu_eval.backends.hf_encoding import encode_score
from mu_eval.task import TextExample

IGNORE_INDEX = -100


@dataclass
class Batch:
    """Right-padded token ids, an attention mask from lengths, and labels with the prompt masked."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def to(self, device: Any) -> Batch:
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


def encode_examples(tokenizer: Any, examples: Sequence[TextExample], max_length: int | None = None) -> list[Any]:
    return [encode_score(tokenizer, e.prompt, e.answer, True, max_length) for e in examples]


def collate(encoded: Sequence[Any]) -> Batch:
    width = max(len(e.input_ids) for e in encoded)
    input_ids = torch.zeros((len(encoded), width), dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, item in enumerate(encoded):
        ids = torch.tensor(item.input_ids, dtype=torch.long)
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
        labels[row, item.start : len(ids)] = ids[item.start :]
    return Batch(input_ids, attention_mask, labels)


def batches(encoded: Sequence[Any], batch_size: int, seed: int) -> Iterator[Batch]:
    """Endless shuffled batches (a new permutation each epoch, seeded)."""
    if not encoded:
        raise ValueError("no training examples")
    generator = random.Random(seed)
    while True:
        order = list(range(len(encoded)))
        generator.shuffle(order)
        for begin in range(0, len(order), batch_size):
            yield collate([encoded[i] for i in order[begin : begin + batch_size]])


def token_logprobs(model: Any, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log p(label) [B, T-1] and the mask of labelled positions, from one forward pass."""
    output = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    logits = output.logits[:, :-1].float()
    labels = batch.labels[:, 1:]
    mask = labels != IGNORE_INDEX
    safe = labels.clamp(min=0)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, safe[..., None]).squeeze(-1)
    return logp * mask, mask


def sequence_logprob(model: Any, batch: Batch) -> torch.Tensor:
    """log pi(y|x) summed over answer tokens, per example [B]."""
    logp, _ = token_logprobs(model, batch)
    return logp.sum(-1)


def nll_loss(model: Any, batch: Batch) -> torch.Tensor:
    """Mean token cross-entropy over answer tokens of the batch."""
    logp, mask = token_logprobs(model, batch)
    return -(logp.sum() / mask.sum().clamp(min=1))


@dataclass
class TrainConfig:
    steps: int = 100
    lr: float = 1e-3
    batch_size: int = 8
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float | None = 1.0
    seed: int = 0
    progress: bool = True
    description: str = "training"


def train(
    model: Any,
    loss_fn: Callable[[int], torch.Tensor],
    config: TrainConfig,
    parameters: Sequence[torch.nn.Parameter] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Run `config.steps` AdamW steps on `loss_fn(step)`; returns the loss of every step.

    The model is put in train mode for the loop and handed back in the mode it had.
    """
    torch.manual_seed(config.seed)
    was_training = model.training
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(config.warmup_steps, 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    losses: list[float] = []
    model.train()
    try:
        for step in tqdm(range(config.steps), desc=config.description, disable=not config.progress):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(step)
            loss.backward()
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(step, losses[-1])
    finally:
        optimizer.zero_grad(set_to_none=True)
        model.train(was_training)
    return losses


def fine_tune(model: Any, tokenizer: Any, examples: Sequence[TextExample], config: TrainConfig) -> list[float]:
    """Supervised fine-tuning on answer tokens (the demo's training, relearning, task vectors)."""
    device = next(model.parameters()).device
    stream = batches(encode_examples(tokenizer, examples), config.batch_size, config.seed)
    return train(model, lambda _step: nll_loss(model, next(stream).to(device)), config)
