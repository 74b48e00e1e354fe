"""The classifier backend (`--backend classifier`): MU-Bench's image, text, audio, video and ViLT classifiers,
plus seq2seq generation for its generative tasks.

A `Classify` request names its input by content hash; the backend reads the normalised input from the run's
input store (`Backend.inputs`, filled by the tasks through `classify_request`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from mu_eval.backend import BackendError
from mu_eval.backends.answer_identity import settings_identity
from mu_eval.backends.base import TorchModelBackend, checkpoint_source, model_identity
from mu_eval.backends.dtype_keyword import dtype_argument
from mu_eval.backends.generation_inputs import generation_inputs
from mu_eval.backends.hf_loading import ModelArgs, default_device, resolve_dtype
from mu_eval.backends.modality_processor import ModalityProcessor
from mu_eval.inputs import MODALITIES, InputError
from mu_eval.options import option
from mu_eval.requests import RANDOM_INIT, Classify, ClassifyResult, Generate, GenerateResult, cut_at_stop

#: Bumped whenever a change here could change an answer, so stale cache entries are not reused.
ANSWER_VERSION = 1
# -- loading -------------------------------------------------------------------------------------------------
def detect_modality(config: Any) -> str:
    """The input modality of a checkpoint, from its architecture and model type."""
    from transformers.models.auto import modeling_auto as auto

    architectures = list(getattr(config, "architectures", None) or [])
    if any(name.startswith("Vilt") and name.endswith("Classification") for name in architectures):
        return "image_text"
    if getattr(config, "is_encoder_decoder", False) and any("ConditionalGeneration" in a for a in architectures):
        return "seq2seq"
    model_type = config.model_type
    for modality, names in (
        ("video", auto.MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES),
        ("audio", auto.MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES),
        ("image", auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES),
        ("text", auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES),
    ):
        if model_type in names:
            return modality
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    raise BackendError(f"cannot tell the modality of model type {model_type!r}; pass --model-args modality=...")


def auto_classes(modality: str) -> tuple[Any, Any]:
    """(model class, processor class) for a modality."""
    import transformers as tf

    table = {
        "image": (tf.AutoModelForImageClassification, tf.AutoImageProcessor),
        "text": (tf.AutoModelForSequenceClassification, tf.AutoTokenizer),
        "audio": (tf.AutoModelForAudioClassification, tf.AutoFeatureExtractor),
        "video": (tf.AutoModelForVideoClassification, tf.AutoImageProcessor),
        "image_text": (tf.ViltForImagesAndTextClassification, tf.AutoProcessor),
        "seq2seq": (tf.AutoModelForSeq2SeqLM, tf.AutoTokenizer),
    }
    if modality not in table:
        raise BackendError(f"unknown modality {modality!r}; expected one of {', '.join(table)}")
    return table[modality]


def wrap_processor(processor: Any, modality: str, config: Any, max_length: int | None = None) -> Any:
    if isinstance(processor, ModalityProcessor) or modality == "seq2seq":
        return processor
    return ModalityProcessor(processor, modality, max_length=max_length or 128,
                             num_frames=getattr(config, "num_frames", None))


@dataclass
class ClassifierModelArgs(ModelArgs):
    """The classifier backend's `--model-args`: the Hugging Face ones, and the input modality."""

    modality: str | None = option(None, choices=(*MODALITIES, "seq2seq"),
                                  help="input modality (default: read from the checkpoint's architecture)")


class ClassifierBackend(TorchModelBackend):
    """Answers `Classify` requests with a transformers classifier (and `Generate` with a seq2seq model).

    `tokenizer` is a `ModalityProcessor` (the raw HF tokenizer for seq2seq models); `torch_model` may be
    replaced by an unlearning method, and answers always come from the current one.
    """

    name = "classifier"
    answer_version = ANSWER_VERSION

    def __init__(self, model: Any, processor: Any, *, identity: dict[str, Any], modality: str | None = None,
                 max_length: int | None = None, **_options: Any) -> None:
        self.modality = modality or detect_modality(model.config)
        self.hold_model(model, dict(identity, modality=self.modality))
        self.tokenizer = wrap_processor(processor, self.modality, model.config, max_length)
        self.max_length = max_length
        self._random_models: dict[int, Any] = {}
        self._text_lengths: dict[str, int] = {}

    @classmethod
    def from_pretrained(cls, model: str, model_args: Mapping[str, Any] | None = None, device: str | None = None,
                        **options: Any) -> ClassifierBackend:
        from transformers import AutoConfig

        args = ClassifierModelArgs.parse(model_args, cls.name)
        device = device or default_device()
        _, source = checkpoint_source(model)
        kwargs = args.loader_kwargs()
        try:
            config = AutoConfig.from_pretrained(source, **kwargs)
            modality = args.modality or detect_modality(config)
            model_class, processor_class = auto_classes(modality)
            processor = processor_class.from_pretrained(source, **kwargs)
            dtype = torch.float32 if args.dtype == "auto" else resolve_dtype(args.dtype, device)
            torch_model = model_class.from_pretrained(source, **dtype_argument(dtype), **kwargs)
        except OSError as error:
            raise BackendError(f"cannot load classifier {model!r}: {str(error).splitlines()[0]}") from error
        torch_model.to(device)
        identity = model_identity(cls.name, ANSWER_VERSION, torch_model, model, args.revision)
        identity.update(settings_identity(args, torch_model, processor, False, ("dtype", "revision", "peft")))
        return cls(torch_model, processor, identity=identity, modality=modality, max_length=args.max_length)


    # -- lengths -------------------------------------------------------------------------------------------
    def _patches(self) -> int:
        config = getattr(self.torch_model.config, "vision_config", self.torch_model.config)
        size, patch = getattr(config, "image_size", 224), getattr(config, "patch_size", 16)
        size = size[0] if isinstance(size, list | tuple) else size
        patch = patch[0] if isinstance(patch, list | tuple) else patch
        return (int(size) // max(int(patch), 1)) ** 2 + 1

    def request_length(self, request: Any) -> int:
        """Tokens-equivalent of one input, so the engine's token budget sizes batches of any modality."""
        if isinstance(request, Generate):
            return len(self.tokenizer(request.prompt)["input_ids"]) + request.max_new_tokens
        if not isinstance(request, Classify):
            raise TypeError(f"the classifier backend cannot answer {request!r}")
        self._check_modality([request])
        value = self.stored(request.digest)
        if request.modality == "text":
            if request.digest not in self._text_lengths:
                self._text_lengths[request.digest] = self.tokenizer.text_length(value)
            return self._text_lengths[request.digest]
        if request.modality == "audio":
            samples, rate = value
            return max(1, int(len(samples) * 16000 / max(rate, 1)) // 320)
        if request.modality == "video":
            frames = getattr(self.torch_model.config, "num_frames", len(value))
            return self._patches() * max(1, frames // getattr(self.torch_model.config, "tubelet_size", 1))
        if request.modality == "image_text":
            return 2 * self._patches() + self.tokenizer.text_length(value[2])
        return self._patches()

    # -- answers -------------------------------------------------------------------------------------------
    def stored(self, digest: str) -> Any:
        """The normalised input a request names, from the run's input store."""
        try:
            return self.inputs.get(digest)
        except InputError as error:
            raise BackendError(str(error)) from None

    def random_model(self, seed: int) -> Any:
        """A randomly initialised model of the same configuration (built once per seed, then reused)."""
        if seed not in self._random_models:
            torch.manual_seed(seed)
            model = type(self.torch_model)._from_config(self.torch_model.config)
            self._random_models[seed] = model.to(self.device).eval()
        return self._random_models[seed]

    def model_for(self, variant: str) -> Any:
        if not variant:
            return self.torch_model
        name, _, seed = variant.partition(":")
        if name != RANDOM_INIT or not seed.lstrip("-").isdigit():
            raise BackendError(f"unknown model variant {variant!r}; expected '' or '{RANDOM_INIT}:SEED'")
        return self.random_model(int(seed))

    def _check_modality(self, requests: list[Classify]) -> None:
        if self.modality == "seq2seq":
            raise BackendError("this checkpoint is a seq2seq generator; classification tasks need a classifier")
        wrong = {r.modality for r in requests} - {self.modality}
        if wrong:
            sent = ", ".join(sorted(wrong))
            raise BackendError(f"the model is a {self.modality} classifier but the task sends {sent} inputs")

    @torch.no_grad()
    def classify(self, requests: list[Classify]) -> list[ClassifyResult]:
        self._check_modality(requests)
        results: dict[int, ClassifyResult] = {}
        by_variant: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            by_variant.setdefault(request.variant, []).append(index)
        for variant, indices in by_variant.items():
            model = self.model_for(variant)
            batch = self.tokenizer([self.stored(requests[i].digest) for i in indices])
            batch = {k: v.to(self.device) for k, v in batch.items()}
            if "pixel_values" in batch:
                batch["pixel_values"] = batch["pixel_values"].to(next(model.parameters()).dtype)
            logits = model(**batch).logits.float().cpu()
            for row, index in enumerate(indices):
                results[index] = ClassifyResult(tuple(logits[row].tolist()))
        return [results[i] for i in range(len(requests))]

    @torch.no_grad()
    def generate(self, requests: list[Generate]) -> list[GenerateResult]:
        """Greedy seq2seq generation (MU-Bench's SAMSum models); causal LMs use `--backend hf`."""
        if self.modality != "seq2seq":
            raise BackendError("generation needs a seq2seq checkpoint here; use --backend hf for causal LMs")
        tokenizer = self.tokenizer
        encoded = tokenizer([r.prompt for r in requests], padding=True, truncation=True,
                            max_length=self.max_length or 1024, return_tensors="pt").to(self.device)
        longest = max(r.max_new_tokens for r in requests)
        output = self.torch_model.generate(**generation_inputs(self.torch_model, encoded), max_new_tokens=longest,
                                           do_sample=False, num_beams=1)
        results = []
        for row, request in enumerate(requests):
            kept = []
            for token in output[row, 1 : 1 + request.max_new_tokens].tolist():  # after the decoder start token
                if token == tokenizer.eos_token_id:  # padding follows EOS
                    break
                kept.append(token)
            text = tokenizer.decode(kept, skip_special_tokens=True)
            results.append(GenerateResult(cut_at_stop(text, request.stop), num_new_tokens=len(kept)))
        return results
