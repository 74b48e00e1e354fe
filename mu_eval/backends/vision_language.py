"""The vision-language backend (`--backend vlm`, also `llava`): greedy generation from a prompt and its images.

MLLMU-Bench asks vision-language models (LLaVA-1.5, Idefics2) questions about a picture. A `VisualGenerate`
request carries the prompt (with one image placeholder per image) and the content hashes of its images,
registered in the same input store as the classifier backend's inputs, so the request stays a small hashable
value and the answer cache is keyed by the pictures' pixels.

Nothing here knows a model family by name: the model class is the one the checkpoint's config names (else
transformers' AutoModelForImageTextToText), and what a placeholder becomes (LLaVA: the image token once per
feature; Idefics2: the same wrapped in `<fake_token_around_image>`) is read off the processor itself
(`ImagePlaceholders`), which also gives the training loop the pixel inputs of image+text examples
(`mu_eval.training`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mu_eval.backend import BackendError
from mu_eval.backends.answer_identity import settings_identity
from mu_eval.backends.base import TorchModelBackend, checkpoint_source, model_identity
from mu_eval.backends.dtype_keyword import dtype_argument
from mu_eval.backends.generation_inputs import generation_inputs
from mu_eval.backends.hf_encoding import encode
from mu_eval.backends.hf_loading import HFModelArgs, default_device, resolve_dtype
from mu_eval.backends.placement import PLACEMENT_KEYS
from mu_eval.inputs import InputError, InputStore, StoredInput, prepare_input
from mu_eval.options import option, untyped_value
from mu_eval.requests import IMAGE_TOKEN, Generate, GenerateResult, VisualGenerate, cut_at_stop

#: 2: generation also stops at the model's own end-of-turn and generation-config EOS ids.
ANSWER_VERSION = 2
#: Processor outputs that describe the text; everything else it returns with a picture is an image input.
TEXT_INPUTS = frozenset({"input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids"})


def image_token_of(processor: Any) -> str:
    """The processor's image placeholder as text (older Idefics2 processors hold a tokenizers AddedToken)."""
    token = getattr(processor, "image_token", None) or IMAGE_TOKEN
    return str(getattr(token, "content", token))


def concat_padded(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate along the first axis, zero-padding every other axis at its end to the largest size.

    This is how processors batch pictures of different sizes (Idefics2 pads the pixels and its pixel mask with
    zeros, and drops all-zero pictures), and how models read them: one picture after another, in placeholder
    order. Pictures of one size (LLaVA's) are simply concatenated."""
    shapes = {tuple(t.shape[1:]) for t in tensors}
    if len(shapes) == 1:
        return torch.cat(list(tensors))
    largest = [max(sizes) for sizes in zip(*shapes)]
    padded = []
    for tensor in tensors:
        pad: list[int] = []
        for have, want in zip(reversed(tensor.shape[1:]), reversed(largest)):
            pad += [0, want - have]
        padded.append(torch.nn.functional.pad(tensor, pad))
    return torch.cat(padded)


@dataclass(frozen=True, eq=False)
class ImageExpansion:
    """What one placeholder becomes for one picture: the token ids the processor puts in its place, and the
    processor's image inputs for the picture (`pixel_values`, and e.g. Idefics2's `pixel_attention_mask`)."""

    ids: tuple[int, ...]
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)


class ImagePlaceholders:
    """How the processor turns a text's image placeholders into tokens, learned from the processor itself.

    A placeholder becomes what the processor makes of the placeholder alone with the picture, less what the
    tokenizer alone makes of it (BOS and the like); computed once per distinct picture and shared by every
    example that shows it (MLLMU-Bench asks several questions about each profile's one photo). Some
    processors also rewrite the text beside an image (Idefics2 puts a space between an image and a word that
    follows it), so the first text of each kind (what lies on either side of each placeholder) is compared
    with the processor's own tokens for it, with and without that space; a text no rule reproduces is an
    error, not silently different tokens in training than in evaluation.
    """

    def __init__(self, processor: Any, inputs: InputStore | None = None) -> None:
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is None or not hasattr(processor, "image_processor"):
            raise BackendError(f"image+text examples need the model's multimodal processor (its AutoProcessor), "
                               f"not a {type(processor).__name__}")
        self.processor = processor
        self.inputs = inputs
        self.tokenizer = tokenizer
        self.image_token = image_token_of(processor)
        self.image_token_id = int(tokenizer.convert_tokens_to_ids(self.image_token))
        #: Whether the processor separates an image from a word right after it; None until a text has shown it.
        self.space_after_image: bool | None = None
        self._expansions: dict[str, ImageExpansion] = {}
        self._checked: set[tuple[tuple[str, str], ...]] = set()
        self._mismatched: set[tuple[tuple[str, str], ...]] = set()

    def picture(self, image: Any) -> StoredInput:
        """A picture as a `StoredInput`: a raw picture is normalised, a `StoredInput` passes, and a content hash
        is read from the input store this was made with."""
        if not isinstance(image, str):
            return prepare_input("image", image)
        try:
            if self.inputs is None:
                raise InputError("no input store to read it from")
            return StoredInput("image", image, self.inputs.get(image))
        except InputError:
            raise BackendError(f"image {image[:12]!r} is a content hash, but not of a picture in this run's input "
                               "store; pass the picture itself (or its StoredInput)") from None

    def expansion(self, image: Any) -> ImageExpansion:
        """Token ids and image inputs of one picture (raw, a `StoredInput`, or the hash of a stored one)."""
        picture = self.picture(image)
        if picture.digest not in self._expansions:
            encoded = self.processor(text=self.image_token, images=[picture.value], return_tensors="pt")
            processed = encoded["input_ids"][0].tolist()
            plain = list(self.tokenizer(self.image_token)["input_ids"])
            where = plain.index(self.image_token_id)
            before, after = plain[:where], plain[where + 1 :]
            end = len(processed) - len(after)
            if processed[: len(before)] != before or processed[end:] != after:
                raise BackendError(f"{type(self.processor).__name__} changes the tokens around {self.image_token} "
                                   "beyond the placeholder itself; cannot tell what one image becomes")
            inputs = {k: v for k, v in encoded.items() if k not in TEXT_INPUTS and isinstance(v, torch.Tensor)}
            self._expansions[picture.digest] = ImageExpansion(tuple(processed[len(before) : end]), inputs)
        return self._expansions[picture.digest]

    def positions(self) -> int:
        """Tokens one placeholder becomes, from the first picture seen (what batch sizing counts)."""
        return len(next(iter(self._expansions.values())).ids)

    def prepare(self, text: str, space: bool | None = None) -> str:
        """`text` as the processor will read it: with the space it puts after an image before a word."""
        if not (self.space_after_image if space is None else space):
            return text
        token = re.escape(self.image_token)
        return re.sub(rf"{token}(?=[^\s<])", self.image_token + " ", text)

    def expand(self, ids: Sequence[int], expansions: Sequence[ImageExpansion]) -> list[int]:
        """`ids` with each placeholder replaced by its picture's tokens, in order."""
        out: list[int] = []
        pictures = iter(expansions)
        for token_id in ids:
            out.extend(next(pictures).ids if token_id == self.image_token_id else (token_id,))
        return out

    def _kind(self, text: str) -> tuple[tuple[str, str], ...]:
        def side(char: str) -> str:
            return "end" if not char else "space" if char.isspace() else char if char == "<" else "text"

        parts = text.split(self.image_token)
        return tuple((side(a[-1:]), side(b[:1])) for a, b in zip(parts, parts[1:]))

    def check(self, text: str, images: Sequence[Any]) -> None:
        """Compare the expansion of `text` with the processor's own tokens, once per kind of text."""
        kind = self._kind(text)
        if not images or kind in self._checked:
            return
        mismatch = BackendError(f"{type(self.processor).__name__} tokenizes {text[:60]!r} with its pictures "
                                f"differently from mu-eval's expansion of its {self.image_token} placeholders")
        if kind in self._mismatched:
            raise mismatch
        pictures = [self.picture(image).value for image in images]
        processed = self.processor(text=text, images=pictures, return_tensors="pt")["input_ids"][0].tolist()
        expansions = [self.expansion(image) for image in images]
        decides = self.prepare(text, space=True) != text
        for space in (False, True) if self.space_after_image is None else (self.space_after_image,):
            if self.expand(encode(self.tokenizer, self.prepare(text, space))[0], expansions) == processed:
                if decides:
                    self.space_after_image = space
                self._checked.add(kind)
                return
        self._mismatched.add(kind)
        raise mismatch


class ProcessorChat:
    """The processor's chat template: one text turn (the `TaskContext.chat` interface) or, through
    `conversation`, a whole multimodal conversation in transformers' message format."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.image_token = image_token_of(processor)

    def __call__(self, question: str) -> str:
        return self.conversation([{"role": "user", "content": [{"type": "text", "text": question}]}])

    def conversation(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def stop_token_ids(model: Any, processor: Any) -> tuple[int, ...]:
    """EOS, the EOS ids of the model's generation config, and the end-of-turn token the processor declares
    (Idefics2's `<end_of_utterance>`, which closes every turn of its chat template), in that order."""
    tokenizer = getattr(processor, "tokenizer", processor)
    ids: list[Any] = [tokenizer.eos_token_id]
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids += configured if isinstance(configured, list | tuple) else [configured]
    turn_end = getattr(processor, "end_of_utterance_token", None)
    if turn_end is not None:
        turn_id = tokenizer.convert_tokens_to_ids(str(getattr(turn_end, "content", turn_end)))
        ids.append(None if turn_id == tokenizer.unk_token_id else turn_id)
    return tuple(dict.fromkeys(int(i) for i in ids if i is not None))


def model_class(source: str, kwargs: dict[str, Any]) -> Any:
    """The class the checkpoint's config names (what it was saved from) when transformers has it, else
    AutoModelForImageTextToText, which picks the generating class of the config's model type."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(source, **kwargs)
    for name in getattr(config, "architectures", None) or ():
        named = getattr(transformers, name, None)
        if named is not None and hasattr(named, "from_pretrained"):
            return named
    return transformers.AutoModelForImageTextToText


@dataclass
class VisionLanguageModelArgs(HFModelArgs):
    """The vision-language backend's `--model-args`: the Hugging Face ones, and `processor.KEY=VALUE` for the
    processor's `from_pretrained` (e.g. `processor.do_image_splitting=false`, which MLLMU-Bench's Idefics2
    scripts set); booleans and numbers are converted, anything else stays a string."""

    processor: dict[str, Any] = option(default_factory=dict, prefix="processor.",
                                       help="keyword arguments of the processor's from_pretrained")


class VisionLanguageBackend(TorchModelBackend):
    """Vision-language models (LLaVA, Idefics2, other image-text-to-text models) answering VisualGenerate.

    `tokenizer` is the multimodal processor; its tokenizer pads on the left for batched generation. With
    templates allowed and a processor that has one, `chat_formatter()` is a `ProcessorChat`.
    """

    name = "llava"
    answer_version = ANSWER_VERSION

    def __init__(self, model: Any, processor: Any, *, identity: dict[str, Any], use_chat_template: bool = True,
                 **_options: Any) -> None:
        self.hold_model(model, identity)
        self.tokenizer = processor
        self.use_chat_template = use_chat_template
        self.text_tokenizer = getattr(processor, "tokenizer", processor)
        self.text_tokenizer.padding_side = "left"
        if self.text_tokenizer.pad_token_id is None:
            self.text_tokenizer.pad_token = self.text_tokenizer.eos_token
        self.stop_ids = stop_token_ids(model, processor)
        self._placeholders: ImagePlaceholders | None = None

    @classmethod
    def from_pretrained(cls, model: str, model_args: Mapping[str, Any] | None = None, device: str | None = None,
                        **options: Any) -> VisionLanguageBackend:
        from transformers import AutoProcessor

        args = VisionLanguageModelArgs.parse(model_args, cls.name)
        placement = args.placement_kwargs(device)
        device = device or default_device()
        _, source = checkpoint_source(model)
        kwargs = args.loader_kwargs()
        settings = {key: untyped_value(value) for key, value in args.processor.items()}
        try:
            processor = AutoProcessor.from_pretrained(source, **kwargs, **settings)
            torch_model = model_class(source, kwargs).from_pretrained(
                source, **dtype_argument(resolve_dtype(args.dtype, args.dtype_device(device))), **kwargs, **placement
            )
        except (OSError, ValueError) as error:
            raise BackendError(f"cannot load vision-language model {model!r}: {str(error).splitlines()[0]}") from error
        if not placement:
            torch_model.to(device)
        identity = model_identity(cls.name, ANSWER_VERSION, torch_model, model, args.revision)
        identity.update(settings_identity(args, torch_model, processor, options.get("use_chat_template", True),
                                          ("dtype", "revision", "peft", "processor", *PLACEMENT_KEYS)))
        if settings:  # they change the image tokens, hence the answers: part of the cache key
            identity["processor_args"] = settings
        return cls(torch_model, processor, identity=identity, **options)

    def has_chat_template(self) -> bool:
        return self.use_chat_template and bool(getattr(self.tokenizer, "chat_template", None))

    def chat_formatter(self) -> Callable[[str], str]:
        return ProcessorChat(self.tokenizer) if self.has_chat_template() else super().chat_formatter()

    def _visual_length(self, request: VisualGenerate) -> int:
        """Prompt tokens with every image expanded as the processor expands it (the first picture's count)."""
        if self._placeholders is None:
            self._placeholders = ImagePlaceholders(self.tokenizer)
        placeholders = self._placeholders
        placeholders.inputs = self.inputs  # the run's store, which the harness may swap between runs
        try:
            placeholders.check(request.prompt, request.images)
        except BackendError:  # text rules not reproduced (only batch sizing depends on them): ask the processor
            pictures = [self.stored(d) for d in request.images]
            return len(self.tokenizer(text=request.prompt, images=pictures)["input_ids"][0])
        text = len(self.text_tokenizer(placeholders.prepare(request.prompt))["input_ids"])
        return text + len(request.images) * (placeholders.positions() - 1)

    def context_length(self) -> int | None:
        """The language model's positions: the pre-flight checks prompt (images expanded) + new tokens."""
        config = self.torch_model.config
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        return getattr(text_config, "max_position_embeddings", None)

    def request_length(self, request: Any) -> int:
        if isinstance(request, VisualGenerate) and request.images:
            return self._visual_length(request) + request.max_new_tokens
        if isinstance(request, VisualGenerate | Generate):
            return len(self.text_tokenizer(request.prompt)["input_ids"]) + request.max_new_tokens
        raise TypeError(f"the vision-language backend cannot answer {request!r}")

    def stored(self, digest: str) -> Any:
        try:
            return self.inputs.get(digest)
        except InputError as error:
            raise BackendError(str(error)) from None

    def generate(self, requests: list[Generate]) -> list[GenerateResult]:
        return self.generate_batch(list(requests))

    def visual_generate(self, requests: list[VisualGenerate]) -> list[GenerateResult]:
        return self.generate_batch(list(requests))

    @torch.no_grad()
    def generate_batch(self, requests: list[VisualGenerate | Generate]) -> list[GenerateResult]:
        """One greedy pass for the batch (one for each part where it mixes prompts with and without pictures);
        each row keeps its own first `max_new_tokens` tokens.

        Greedy decoding makes a row's first k tokens independent of how many more are generated, so rows
        with different limits can share a batch. A row ends at its first stop id (`stop_token_ids`).
        """
        pictured = [isinstance(r, VisualGenerate) and bool(r.images) for r in requests]
        if any(pictured) and not all(pictured):
            # Prompts with and without pictures reach the processor apart: Idefics2's processor before
            # transformers 4.57 rejects a batch that mixes them. A greedy row does not depend on its batch.
            with_pictures = iter(self.generate_batch([r for r, p in zip(requests, pictured) if p]))
            without = iter(self.generate_batch([r for r, p in zip(requests, pictured) if not p]))
            return [next(with_pictures) if p else next(without) for p in pictured]
        images = [self.stored(d) for r in requests if isinstance(r, VisualGenerate) for d in r.images]
        prompts = [r.prompt for r in requests]
        encoded = self.tokenizer(text=prompts, images=images or None, padding=True, return_tensors="pt")
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        if "pixel_values" in encoded:
            encoded["pixel_values"] = encoded["pixel_values"].to(next(self.torch_model.parameters()).dtype)
        tokenizer = self.text_tokenizer
        stops = set(self.stop_ids)
        output = self.torch_model.generate(
            **generation_inputs(self.torch_model, encoded), max_new_tokens=max(r.max_new_tokens for r in requests),
            do_sample=False, num_beams=1,
            eos_token_id=self.stop_ids[0] if len(self.stop_ids) == 1 else list(self.stop_ids),
            pad_token_id=tokenizer.pad_token_id,
        )
        width = encoded["input_ids"].shape[1]
        results = []
        for row, request in enumerate(requests):
            kept = []
            for token in output[row, width : width + request.max_new_tokens].tolist():
                if token in stops:  # padding follows a stop; a pad id before it is a generated token
                    break
                kept.append(token)
            text = tokenizer.decode(kept, skip_special_tokens=True)
            results.append(GenerateResult(cut_at_stop(text, request.stop), num_new_tokens=len(kept)))
        return results
