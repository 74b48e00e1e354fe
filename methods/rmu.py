"""RMU (representation misdirection): push one layer's hidden states on forget text towards a fixed random
direction c*u/|u|, keep them where the frozen model had them on retain text; only a few MLP output
projections are trained (WMDP's recipe: layers 5-7 `mlp.down_proj`, steering layer 7 of 32). Forget data from
several corpora (WMDP's bio and cyber) is unlearned topic by topic, as WMDP's run does (`rmu_topics`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mu_eval.method import ConfiguredMethod, MethodError, MethodOptionError
from mu_eval.task import UnlearningData
from mu_eval.training import Batch, encode_examples, paired_batches, train
from mu_eval.training_models import frozen_copy

from .base import FineTuneOptions, optimizer_steps, summarise_losses, train_config
from .rmu_topics import control_vectors, split_by_topic, topic_batches, topic_max_length, topics_in_order

#: WMDP steers layer 7 of zephyr-7b's 32; other depths get the same relative depth.
WMDP_LAYER, WMDP_DEPTH = 7, 32
#: `topics`: auto alternates when the forget examples come in more than one group, else pools
TOPIC_MODES = ("auto", "alternate", "pooled")


@dataclass
class RMUOptions(FineTuneOptions):
    """WMDP zephyr-7b defaults: c 6.5, alpha 1200, AdamW lr 5e-5, batch 4, 150 batches, no clipping.

    `layer` -1 picks the WMDP relative depth; empty `update_layers` means layer-2..layer. With forget examples
    in several groups (`topics=auto`, or `alternate`), topic t's documents are cut at `topic_max_lengths[t]`
    tokens (the last entry for later topics: WMDP's 512 for bio, 768 for cyber) and retain text at
    `max_length`; `pooled` shuffles all forget examples together under one control vector.
    """

    steps: int = 150
    lr: float = 5e-5
    batch_size: int = 4
    grad_accum_steps: int = 1
    warmup_ratio: float = 0.0
    max_grad_norm: float | None = None
    steering_coeff: float = 6.5
    retain_weight: float = 1200.0
    layer: int = -1
    update_layers: tuple[int, ...] = ()
    update_module: str = "mlp.down_proj"
    topics: str = "auto"
    topic_max_lengths: tuple[int, ...] = (512, 768)


class _Stop(Exception):
    """Raised by the hook once the steered layer has run: the rest of the forward pass is not needed."""


def decoder_layers(model: Any) -> torch.nn.ModuleList:
    """The transformer blocks: the ModuleList as long as `config.num_hidden_layers` (Llama, GPT-2, NeoX...)."""
    depth = getattr(model.config, "num_hidden_layers", None)
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == depth:
            return module
    raise MethodError(f"cannot find the {depth} decoder layers of {type(model).__name__}")


@contextmanager
def capture(layer: torch.nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Record the layer's output hidden states, then stop the forward pass."""
    store: dict[str, torch.Tensor] = {}

    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        store["hidden"] = output[0] if isinstance(output, tuple) else output
        raise _Stop

    handle = layer.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def hidden_states(model: Any, layer: torch.nn.Module, batch: Batch) -> torch.Tensor:
    with capture(layer) as store:
        try:
            model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        except _Stop:
            pass
    return store["hidden"].float()


def masked_mse(hidden: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the elements of the masked (answer) positions."""
    squared = ((hidden - target) ** 2).mean(-1)
    return (squared * mask).sum() / mask.sum().clamp(min=1)


class RMU(ConfiguredMethod):
    """mean|h_l(x_f) - c u/|u||^2 + alpha mean|h_l(x_r) - h_l^frozen(x_r)|^2 over answer positions."""

    name = "rmu"
    kind = "llm"
    description = "RMU: misdirect one layer's forget activations to a random vector, keep retain ones."
    Options: ClassVar[type] = RMUOptions
    accepts_images: ClassVar[bool] = False
    image_refusal: ClassVar[str] = ("it steers the hidden states of a text model's decoder layer, run on token ids "
                                    "alone (no pixel values reach its forward passes)")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.settings.topics not in TOPIC_MODES:
            raise MethodOptionError(f"method 'rmu': topics={self.settings.topics!r}; choose {', '.join(TOPIC_MODES)}")
        if not self.settings.topic_max_lengths or min(self.settings.topic_max_lengths) < 1:
            raise MethodOptionError("method 'rmu': topic_max_lengths needs one or more positive token counts, "
                                    f"got {self.settings.topic_max_lengths!r}")

    def resolve_layers(self, depth: int) -> tuple[int, list[int]]:
        options = self.settings
        # auto: WMDP's relative depth, but never the embedding-adjacent first block of a deeper model
        auto = max(round(WMDP_LAYER * depth / WMDP_DEPTH), 1 if depth > 1 else 0)
        layer = options.layer if options.layer >= 0 else auto
        layer = min(max(layer, 0), depth - 1)
        update = list(options.update_layers) or list(range(max(layer - 2, 0), layer + 1))
        bad = [i for i in [options.layer, *update] if i >= depth]
        if bad:
            raise MethodError(f"method 'rmu': layer {bad[0]} does not exist (the model has {depth} layers)")
        return layer, update

    def unlearn(self, model: Any, tokenizer: Any, data: UnlearningData) -> Any:
        options = self.settings
        if not data.retain and options.retain_weight:
            raise MethodError("method 'rmu' needs retain data (or retain_weight=0)")
        layers = decoder_layers(model)
        layer_index, update = self.resolve_layers(len(layers))
        try:
            params = [p for i in update for p in layers[i].get_submodule(options.update_module).parameters()]
        except AttributeError as error:
            raise MethodError(f"method 'rmu': update_module={options.update_module!r}: {error}") from error
        device = next(model.parameters()).device
        frozen = frozen_copy(model)
        frozen_layer = decoder_layers(frozen)[layer_index]
        topics = topics_in_order([getattr(e, "group", "") for e in data.forget])
        alternate = options.topics == "alternate" or (options.topics == "auto" and len(topics) > 1)
        controls = [c.to(device) for c in control_vectors(len(topics) if alternate else 1, model.config.hidden_size,
                                                          options.steering_coeff, options.seed)]
        retain = encode_examples(tokenizer, data.retain, options.max_length) if options.retain_weight else []
        steps = optimizer_steps(options, len(data.forget))
        if alternate:
            forget_sets = [encode_examples(tokenizer, part, topic_max_length(options.topic_max_lengths, t))
                           for t, part in enumerate(split_by_topic(data.forget, topics))]
            stream = topic_batches(forget_sets, retain, options.batch_size, steps * max(options.grad_accum_steps, 1))
        else:
            pooled = encode_examples(tokenizer, data.forget, options.max_length)
            stream = ((0, f, r) for f, r in paired_batches(pooled, retain, options.batch_size, options.seed))
        steered = layers[layer_index]

        def loss_fn(_step: int) -> torch.Tensor:
            topic, forget_batch, retain_batch = next(stream)
            forget_batch = forget_batch.to(device)
            mask = forget_batch.labels != -100
            hidden = hidden_states(model, steered, forget_batch)
            loss = masked_mse(hidden, controls[topic].expand_as(hidden), mask)
            if retain_batch is not None:
                retain_batch = retain_batch.to(device)
                with torch.no_grad():
                    target = hidden_states(frozen, frozen_layer, retain_batch)
                kept = hidden_states(model, steered, retain_batch)
                loss = loss + options.retain_weight * masked_mse(kept, target, retain_batch.labels != -100)
            return loss

        trainable = {id(p) for p in params}
        saved = [(p, p.requires_grad) for p in model.parameters()]
        for parameter, _ in saved:
            parameter.requires_grad_(id(parameter) in trainable)
        try:
            config = train_config(options, steps, "unlearning (rmu)", self.progress)
            losses = train(model, loss_fn, config, params)
        finally:
            for parameter, flag in saved:
                parameter.requires_grad_(flag)
        self.info.update(summarise_losses(losses), layer=layer_index, update_layers=update,
                         topics=topics if alternate else None)
        return model
