"""The one training loop shared by the demo, the unlearning methods and the relearning attack.

Examples are tokenised exactly as the harness scores them (prompt and answer together, the answer found
by offsets, EOS appended), so a model trained here is evaluated on the same token boundaries. Image+text
examples (LLaVA, Idefics2) are tokenised the same way by the processor's tokenizer, each image placeholder then
replaced by the tokens the processor gives its picture, and their batches carry the pictures' `pixel_values`
(and any other image input the processor makes, such as Idefics2's `pixel_attention_mask`) into every forward
pass.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from mu_eval.backend import BackendError
from mu_eval.backends.hf_encoding import EncodedScore, encode_score
from mu_eval.distributed import ParallelTrainingError, TrainingProcesses, training_processes
from mu_eval.method import MethodError
from mu_eval.task import ImageTextExample, TextExample

if TYPE_CHECKING:
    from mu_eval.backends.vision_language import ImagePlaceholders
    from mu_eval.sharded_training import ShardedModel

IGNORE_INDEX = -100


@dataclass
class Batch:
    """Right-padded token ids, an attention mask from lengths, and labels with the prompt masked; with image
    examples, the pixel values of their pictures in placeholder order (None for text-only batches) and the
    processor's other image inputs the forward pass takes with them (Idefics2's `pixel_attention_mask`;
    None when there are none)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor | None = None
    image_inputs: dict[str, torch.Tensor] | None = None

    def to(self, device: Any) -> Batch:
        pixels = None if self.pixel_values is None else self.pixel_values.to(device)
        extra = None if self.image_inputs is None else {k: v.to(device) for k, v in self.image_inputs.items()}
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device), pixels,
                     extra)


@dataclass(frozen=True, eq=False)
class EncodedImageText:
    """An image+text example's ids, every placeholder expanded to its picture's tokens (all before `start`,
    so image positions are never labelled), its pictures' pixel values (one after another along the first
    axis) and their other image inputs, stacked the same way."""

    input_ids: tuple[int, ...]
    start: int
    pixel_values: torch.Tensor | None
    eos_appended: bool = True
    truncated: bool = False
    image_inputs: dict[str, torch.Tensor] = field(default_factory=dict)


def encode_examples(
    tokenizer: Any, examples: Sequence[TextExample | ImageTextExample], max_length: int | None = None
) -> list[Any]:
    """Scoring-identical encodings; beyond `max_length` the prompt loses tokens from the left, and an answer
    that alone is too long (a corpus document) keeps its first tokens instead of failing.

    With a multimodal processor as `tokenizer`, text examples use its tokenizer and image examples are
    encoded by `encode_image_text` (each image counts as one position against `max_length`, however many
    positions its features take)."""
    pictures = None
    if any(isinstance(e, ImageTextExample) for e in examples):
        from mu_eval.backends.vision_language import ImagePlaceholders

        pictures = ImagePlaceholders(tokenizer)
    text_tokenizer = tokenizer.tokenizer if hasattr(tokenizer, "image_processor") else tokenizer
    return [encode_image_text(pictures, e, max_length) if isinstance(e, ImageTextExample) and pictures is not None
            else _encode_within(text_tokenizer, e, max_length) for e in examples]


def encode_image_text(
    pictures: ImagePlaceholders, example: ImageTextExample, max_length: int | None
) -> EncodedImageText:
    """The text encoded like a text example's (one token per placeholder, the answer by offsets, EOS), then
    each placeholder replaced by the tokens the processor gives its picture (`ImagePlaceholders`).

    The prompt is first checked against the processor's own tokens (once per kind of prompt) and read as the
    processor reads it (Idefics2 separates an image from the word after it), so the prompt tokens trained on
    are those evaluation feeds the model."""
    token = pictures.image_token
    if example.prompt.count(token) != len(example.images) or token in example.answer:
        raise MethodError(f"an image+text example must have one {token} in its prompt per image and none in its "
                          f"answer; this one has {example.prompt.count(token)} in the prompt for "
                          f"{len(example.images)} images: {example.prompt[:60]!r}")
    try:
        pictures.check(example.prompt, example.images)
    except BackendError as error:
        raise MethodError(str(error)) from None
    prepared = replace(example, prompt=pictures.prepare(example.prompt))
    text = _encode_within(pictures.tokenizer, prepared, max_length)
    placeholder = pictures.image_token_id
    if text.input_ids[: text.start].count(placeholder) != len(example.images):
        raise MethodError(f"max_length={max_length} cuts an image out of the example {example.prompt[:60]!r}; "
                          "raise max_length (each image counts as one position)")
    expansions = [pictures.expansion(image) for image in example.images]
    ids = pictures.expand(text.input_ids, expansions)
    start = text.start + len(ids) - len(text.input_ids)  # every placeholder lies before the answer
    if not expansions:
        return EncodedImageText(tuple(ids), start, None, text.eos_appended, text.truncated)
    from mu_eval.backends.vision_language import concat_padded

    inputs = {key: concat_padded([e.inputs[key] for e in expansions]) for key in expansions[0].inputs}
    pixels = inputs.pop("pixel_values", None)
    return EncodedImageText(tuple(ids), start, pixels, text.eos_appended, text.truncated, inputs)


def _encode_within(tokenizer: Any, example: TextExample | ImageTextExample, max_length: int | None) -> EncodedScore:
    encoded = encode_score(tokenizer, example.prompt, example.answer, True, None)
    if max_length is None or len(encoded.input_ids) <= max_length:
        return encoded
    if len(encoded.input_ids) - encoded.start < max_length:  # the answer fits with some context
        return encode_score(tokenizer, example.prompt, example.answer, True, max_length)
    begin = max(encoded.start - 1, 0)  # keep one context token to predict the first answer token from
    ids = encoded.input_ids[begin : begin + max_length]
    return replace(encoded, input_ids=ids, start=encoded.start - begin, eos_appended=False, truncated=True)


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
    pictures = [item for item in encoded if getattr(item, "pixel_values", None) is not None]
    if not pictures:
        return Batch(input_ids, attention_mask, labels)
    from mu_eval.backends.vision_language import concat_padded

    extra = {key: concat_padded([item.image_inputs[key] for item in pictures]) for key in pictures[0].image_inputs}
    return Batch(input_ids, attention_mask, labels, concat_padded([item.pixel_values for item in pictures]),
                 extra or None)


#: (rank, processes) while `train` runs data-parallel: each stream then yields only this process's batches.
_batch_share: ContextVar[tuple[int, int]] = ContextVar("batch_share", default=(0, 1))


def batches(
    encoded: Sequence[Any], batch_size: int, seed: int, collate_fn: Callable[[Sequence[Any]], Any] = collate
) -> Iterator[Batch]:
    """Endless shuffled batches (a new permutation each epoch, seeded); `collate_fn` builds each batch.

    Under data-parallel `train`, process r of n yields batches r, r + n, r + 2n, ... of the one sequence a
    single process yields (read when the stream is first drawn from, inside the loop)."""
    if not encoded:
        raise ValueError("no training examples")
    generator = random.Random(seed)
    rank, size = _batch_share.get()
    index = 0
    while True:
        order = list(range(len(encoded)))
        generator.shuffle(order)
        for begin in range(0, len(order), batch_size):
            if index % size == rank:
                yield collate_fn([encoded[i] for i in order[begin : begin + batch_size]])
            index += 1


def answer_logits(model: Any, batch: Batch) -> torch.Tensor:
    """Float32 logits at the positions predicting tokens 1..T-1 [B, T-1, V], aligned with `labels[:, 1:]`.

    A batch with pictures passes their pixel values (in the model's dtype, as generation does) and the
    processor's other image inputs."""
    pixel_values = getattr(batch, "pixel_values", None)
    if pixel_values is None:
        output = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    else:
        dtype = getattr(model, "dtype", None)
        pixel_values = pixel_values.to(dtype) if isinstance(dtype, torch.dtype) else pixel_values
        extra = getattr(batch, "image_inputs", None) or {}
        output = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, pixel_values=pixel_values,
                       **extra)
    return output.logits[:, :-1].float()


def answer_mask(batch: Batch) -> torch.Tensor:
    """Positions of `answer_logits` whose next token is an answer token (never prompt or padding)."""
    return batch.labels[:, 1:] != IGNORE_INDEX


def logprobs_from_logits(logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log p(label) [B, T-1], zero outside the answer, and the answer mask."""
    labels = batch.labels[:, 1:]
    mask = labels != IGNORE_INDEX
    logp = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    return logp * mask, mask


def token_logprobs(model: Any, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log p(label) [B, T-1] and the mask of labelled positions, from one forward pass."""
    return logprobs_from_logits(answer_logits(model, batch), batch)


def sequence_logprob(model: Any, batch: Batch) -> torch.Tensor:
    """log pi(y|x) summed over answer tokens, per example [B]."""
    logp, _ = token_logprobs(model, batch)
    return logp.sum(-1)


def nll_loss(model: Any, batch: Batch) -> torch.Tensor:
    """Mean token cross-entropy over answer tokens of the batch."""
    logp, mask = token_logprobs(model, batch)
    return -(logp.sum() / mask.sum().clamp(min=1))


def kl_to_reference(logits: torch.Tensor, reference_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean over answer tokens of KL(p_ref || p_theta), both from log-softmax (MUSE's KLR fed raw logits)."""
    logp = torch.log_softmax(logits, dim=-1)
    ref_logp = torch.log_softmax(reference_logits.float(), dim=-1)
    per_token = (ref_logp.exp() * (ref_logp - logp)).sum(-1)
    mask = answer_mask(batch)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def paired_batches(
    forget: Sequence[Any],
    retain: Sequence[Any],
    batch_size: int,
    seed: int,
    collate_forget: Callable[[Sequence[Any]], Any] = collate,
) -> Iterator[tuple[Any, Batch | None]]:
    """Endless (forget batch, retain batch) pairs, each stream shuffled on its own; None when no retain."""
    forget_stream = batches(forget, batch_size, seed, collate_forget)
    retain_stream = batches(retain, batch_size, seed + 1) if retain else None
    while True:
        yield next(forget_stream), (next(retain_stream) if retain_stream is not None else None)


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
    #: Micro-batches whose gradients are summed into one optimizer step (`loss_fn` is called this often).
    grad_accum_steps: int = 1


def train(
    model: Any,
    loss_fn: Callable[[int], torch.Tensor],
    config: TrainConfig,
    parameters: Sequence[torch.nn.Parameter] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Run `config.steps` AdamW steps on `loss_fn(step)`; returns the loss of every step.

    The model is put in train mode for the loop and handed back in the mode it had. In processes started by
    `accelerate launch` or `torchrun`, each optimizer step's `grad_accum_steps` micro-batches are shared
    among the processes (the streams of `batches` yield each process its own), their gradients summed, so
    every process takes the step a single process takes with the same global batch (docs/scaling.md).
    """
    torch.manual_seed(config.seed)
    was_training = model.training
    try:
        processes = training_processes()
    except ParallelTrainingError as error:
        raise MethodError(str(error)) from None
    accumulate = max(config.grad_accum_steps, 1)
    size = processes.size if processes is not None else 1
    if accumulate % size:
        raise MethodError(f"grad_accum_steps={accumulate} does not split among {size} processes: each optimizer "
                          f"step's micro-batches are shared among them, so make it a multiple of {size}")
    if processes is not None:
        processes.broadcast_model(model)
    sharded = shard_for_training(model, processes) if processes is not None and processes.sharded else None
    if sharded is not None:
        parameters = sharded.parameters(parameters)
    share = _batch_share.set((processes.rank, size) if processes is not None else (0, 1))
    try:
        losses = _train(model, loss_fn, config, parameters, on_step, processes, was_training)
    finally:
        _batch_share.reset(share)
    if sharded is not None:  # every process gathers the trained weights into the whole model
        sharded.restore()
    return losses


def shard_for_training(model: Any, processes: TrainingProcesses) -> ShardedModel:
    """`model` sharded in place across the processes (FSDP2); a set-up it cannot shard is a method error."""
    from mu_eval.sharded_training import ShardedModel, ShardingError

    try:
        return ShardedModel.shard(model, processes.state.device)
    except ShardingError as error:
        raise MethodError(str(error)) from None


def _train(
    model: Any,
    loss_fn: Callable[[int], torch.Tensor],
    config: TrainConfig,
    parameters: Sequence[torch.nn.Parameter] | None,
    on_step: Callable[[int, float], None] | None,
    processes: TrainingProcesses | None,
    was_training: bool,
) -> list[float]:
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(config.warmup_steps, 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
    )
    losses: list[float] = []
    accumulate = max(config.grad_accum_steps, 1)
    size = processes.size if processes is not None else 1
    sharded = processes is not None and processes.sharded
    progress = config.progress and (processes is None or processes.rank == 0)
    model.train()
    try:
        for step in tqdm(range(config.steps), desc=config.description, disable=not progress):
            optimizer.zero_grad(set_to_none=True)
            parts = []
            for _ in range(accumulate // size):
                micro = loss_fn(step) / accumulate
                (micro * size if sharded else micro).backward()  # FSDP averages the processes' gradients
                parts.append(micro.detach())
            loss = float(torch.stack(parts).sum())
            if processes is not None:
                if not sharded:
                    processes.sum_gradients(params)
                loss = processes.sum_value(loss)
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(loss)
            if on_step is not None:
                on_step(step, losses[-1])
    finally:
        optimizer.zero_grad(set_to_none=True)
        model.train(was_training)
    return losses


def fine_tune(
    model: Any,
    tokenizer: Any,
    examples: Sequence[TextExample],
    config: TrainConfig,
    max_length: int | None = None,
) -> list[float]:
    """Supervised fine-tuning on answer tokens (the demo's training, relearning, task vectors)."""
    device = next(model.parameters()).device
    stream = batches(encode_examples(tokenizer, examples, max_length), config.batch_size, config.seed)
    return train(model, lambda _step: nll_loss(model, next(stream).to(device)), config)
