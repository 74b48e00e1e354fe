"""Loading a causal LM and its tokenizer from a local path or a hub id, with `--model-args`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mu_eval.backends.base import BackendError, checkpoint_source
from mu_eval.backends.dtype_keyword import dtype_argument

DTYPES = ("float32", "float16", "bfloat16", "auto")
#: `generation_cache` values: transformers' growing cache, or a preallocated one (compiled decoding on CUDA).
GENERATION_CACHES = ("dynamic", "static")


@dataclass
class ModelArgs:
    """Parsed `--model-args k=v,...` for the Hugging Face backend."""

    dtype: str = "auto"
    revision: str | None = None
    peft: str | None = None
    trust_remote_code: bool = False
    attn_implementation: str | None = None
    max_length: int | None = None
    generation_cache: str = "dynamic"
    extra: dict[str, str] = field(default_factory=dict)

    def loader_kwargs(self) -> dict[str, Any]:
        """What every `from_pretrained` of a backend receives: revision and the remote-code switch."""
        return {"revision": self.revision, "trust_remote_code": self.trust_remote_code}

    @classmethod
    def parse(cls, values: dict[str, str]) -> ModelArgs:
        args = cls()
        for key, value in values.items():
            if key == "dtype":
                if value not in DTYPES:
                    raise BackendError(f"model arg dtype={value!r}: expected one of {', '.join(DTYPES)}")
                args.dtype = value
            elif key == "revision":
                args.revision = value
            elif key == "peft":
                args.peft = value
            elif key == "trust_remote_code":
                args.trust_remote_code = value.lower() in ("1", "true", "yes")
            elif key == "attn_implementation":
                args.attn_implementation = value
            elif key == "max_length":
                args.max_length = int(value)
            elif key == "generation_cache":
                if value not in GENERATION_CACHES:
                    raise BackendError(
                        f"model arg generation_cache={value!r}: expected one of {', '.join(GENERATION_CACHES)}"
                    )
                args.generation_cache = value
            else:
                args.extra[key] = value
        return args


def parse_key_values(text: str | None) -> dict[str, str]:
    """`a=1,b=x` -> {"a": "1", "b": "x"}; an item without `=` is an error."""
    if not text:
        return {}
    pairs = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        pairs[key.strip()] = value.strip()
    return pairs


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, name)


def load_model_and_tokenizer(model: str, args: ModelArgs, device: str) -> tuple[Any, Any]:
    """AutoModelForCausalLM and AutoTokenizer from a path or hub id; a LoRA/peft adapter on top if asked."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, source = checkpoint_source(model)
    if path.exists() and not (path / "config.json").is_file():
        raise BackendError(f"model path has no config.json (not a transformers checkpoint): {path}")
    dtype = resolve_dtype(args.dtype, device)
    kwargs = args.loader_kwargs()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model_kwargs = dict(kwargs, **dtype_argument(dtype))
        if args.attn_implementation:
            model_kwargs["attn_implementation"] = args.attn_implementation
        torch_model = AutoModelForCausalLM.from_pretrained(source, **model_kwargs)
    except OSError as error:
        raise BackendError(f"cannot load model {model!r}: {str(error).splitlines()[0]}") from error
    if args.peft:
        torch_model = attach_adapter(torch_model, args.peft)
    torch_model.to(device)
    torch_model.eval()
    return torch_model, tokenizer


def attach_adapter(model: Any, adapter: str) -> Any:
    from peft import PeftModel

    if not Path(adapter).expanduser().exists():
        raise BackendError(f"peft adapter path does not exist: {adapter}")
    return PeftModel.from_pretrained(model, str(Path(adapter).expanduser()))
