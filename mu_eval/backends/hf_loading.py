"""Loading a causal LM and its tokenizer from a local path or a hub id, with `--model-args`."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mu_eval.backend import BackendError
from mu_eval.backends.base import checkpoint_source
from mu_eval.backends.checkpoint_check import (
    LIBRARY_ERRORS,
    check_loaded_weights,
    check_local_checkpoint,
)
from mu_eval.backends.dtype_keyword import dtype_argument
from mu_eval.backends.placement import PlacementArgs
from mu_eval.options import OptionError, option, parse_options

DTYPES = ("float32", "float16", "bfloat16", "auto")
#: `generation_cache` values: transformers' growing cache, or a preallocated one (compiled decoding on CUDA).
GENERATION_CACHES = ("dynamic", "static")


class ModelArgsError(BackendError, OptionError):
    """A `--model-args` key the backend does not take, or a value it cannot use."""


ArgsT = TypeVar("ArgsT", bound="ModelArgs")


@dataclass
class ModelArgs:
    """`--model-args k=v,...` of the Hugging Face backends; an unknown key is an error naming the closest."""

    dtype: str = option("auto", choices=DTYPES, help="weights dtype; auto: bfloat16 on CUDA, else float32")
    revision: str | None = option(None, help="hub revision (branch, tag or commit) of a hub id")
    peft: str | None = option(None, help="folder of a peft (LoRA) adapter applied on top")
    trust_remote_code: bool = option(False, help="run the checkpoint's own modelling code")
    attn_implementation: str | None = option(None, help="transformers' attention implementation, e.g. sdpa")
    max_length: int | None = option(None, minimum=1, help="longest sequence the model is given (default: its own)")
    generation_cache: str = option("dynamic", choices=GENERATION_CACHES,
                                   help="dynamic, or static: a preallocated cache (compiled decoding on CUDA)")

    def loader_kwargs(self) -> dict[str, Any]:
        """What every `from_pretrained` of a backend receives: revision and the remote-code switch."""
        return {"revision": self.revision, "trust_remote_code": self.trust_remote_code}

    @classmethod
    def parse(cls: type[ArgsT], values: Mapping[str, Any] | None, backend: str = "hf") -> ArgsT:
        try:
            return parse_options(cls, values, f"backend {backend!r} (--model-args)")
        except OptionError as error:
            raise ModelArgsError(str(error)) from None


@dataclass
class HFModelArgs(PlacementArgs, ModelArgs):
    """The Hugging Face model backends' `--model-args`: the common keys and where the weights go
    (`parallelize`, `device_map`, `max_memory`, `offload_folder`; docs/scaling.md)."""

    def placement_kwargs(self, device: str | None = None) -> dict[str, Any]:
        try:
            return super().placement_kwargs(device)
        except OptionError as error:
            raise ModelArgsError(f"--model-args: {error}") from None


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, name)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def load_model_and_tokenizer(model: str, args: HFModelArgs, device: str | None) -> tuple[Any, Any]:
    """AutoModelForCausalLM and AutoTokenizer from a path or hub id; a LoRA/peft adapter on top if asked.

    On `device` (named by the user, else the default one), or placed by accelerate when the args ask for a
    device map. A local folder is checked first (its JSON files, the safetensors headers, remote code, the
    adapter), so that a broken file is named in one line; what the libraries still refuse is reported by
    its first line."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, source = checkpoint_source(model)
    if path.exists():
        check_local_checkpoint(path, args)
    if args.peft:
        check_adapter(args.peft)
    placement = args.placement_kwargs(device)
    device = device or default_device()
    dtype = resolve_dtype(args.dtype, args.dtype_device(device))
    kwargs = args.loader_kwargs()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    except LIBRARY_ERRORS as error:
        raise BackendError(f"cannot load the tokenizer of {model!r}: {first_line(error)}") from error
    model_kwargs = dict(kwargs, **dtype_argument(dtype), **placement)
    if args.attn_implementation:
        model_kwargs["attn_implementation"] = args.attn_implementation
    try:
        with warnings.catch_warnings():  # torch's note on a pickle's protocol, ahead of refusing it
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            loaded: Any = AutoModelForCausalLM.from_pretrained(source, output_loading_info=True, **model_kwargs)
    except pickle.UnpicklingError as error:
        raise BackendError(f"refused to load the pickled weights of {model!r}: they hold more than tensors, and "
                           f"unpickling them could run code (weights only load failed); convert them to "
                           f"safetensors where they come from") from error
    except LIBRARY_ERRORS as error:
        text = str(error).lower()
        if args.attn_implementation and ("attn" in text or "attention" in text):
            raise BackendError(f"--model-args attn_implementation={args.attn_implementation!r} cannot be used: "
                               f"{first_line(error)}") from error
        raise BackendError(f"cannot load model {model!r}: {first_line(error)}") from error
    torch_model, info = loaded
    check_loaded_weights(model, info)
    if args.peft:
        torch_model = attach_adapter(torch_model, args.peft)
    if not placement:
        torch_model.to(device)
    torch_model.eval()
    return torch_model, tokenizer


def check_adapter(adapter: str) -> None:
    """A peft adapter folder must hold adapter_config.json (checked before the base model loads)."""
    path = Path(adapter).expanduser()
    if not path.exists():
        raise BackendError(f"peft adapter path does not exist: {adapter}")
    if not (path / "adapter_config.json").is_file():
        raise BackendError(f"peft adapter path has no adapter_config.json (not a peft adapter): {adapter}")


def attach_adapter(model: Any, adapter: str) -> Any:
    from peft import PeftModel

    check_adapter(adapter)
    try:
        return PeftModel.from_pretrained(model, str(Path(adapter).expanduser()))
    except LIBRARY_ERRORS as error:
        raise BackendError(f"cannot load the peft adapter {adapter}: {first_line(error)}") from error
