"""What the built-in backends share: locating a checkpoint, naming a model, holding an in-memory torch model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mu_eval.backend import Backend, BackendError
from mu_eval.backends.placement import input_device
from mu_eval.identity import hash_weight_files


def checkpoint_source(model: str) -> tuple[Path, str]:
    """The local path of `model` and what to hand to `from_pretrained` (the path, or the hub id).

    A name that looks like a path (./, /, ~) but does not exist is an error, not a hub look-up.
    """
    path = Path(model).expanduser()
    if "\x00" in model:
        raise BackendError(f"model path contains a null byte: {model!r}")
    try:
        exists = path.exists()
    except OSError as error:  # a name too long for the file system
        raise BackendError(f"model path cannot be used ({error.strerror}): {model[:80]}...") from None
    if model.startswith((".", "/", "~")) and not exists:
        raise BackendError(f"model path does not exist: {path}")
    return path, (str(path) if exists else model)


def model_identity(
    backend: str,
    answer_version: int,
    torch_model: Any,
    model: str | None = None,
    revision: str | None = None,
    adapter: str | None = None,
    model_id: str | None = None,
) -> dict[str, Any]:
    """The identity of a checkpoint loaded from `model` (a path or hub id), or of an in-memory model.

    In-memory models (model=None) are named by `model_id` when given and have no weights hash here: their
    weights change during training, so each run hashes them as they are then (`single_run.model_identity`).
    """
    path = Path(model).expanduser() if model is not None else None
    local = path if path is not None and path.exists() else None
    name = str(local.resolve()) if local is not None else model
    identity = {
        "backend": backend,
        "answer_version": answer_version,
        "model": name if name is not None else model_id or f"in-memory {type(torch_model).__name__}",
        "revision": revision,
        "weights_sha256": hash_weight_files(local) if local is not None else None,
        "dtype": str(next(torch_model.parameters()).dtype).removeprefix("torch."),
        "adapter": adapter,
        "quantization": None,
    }
    if adapter:
        identity["adapter_sha256"] = hash_weight_files(adapter)
    return identity


class TorchModelBackend(Backend):
    """A backend around one torch model held in memory: it serves the model in eval mode, names it by its
    identity, and hands it back in the train/eval mode it had (`close`). Subclasses set `answer_version`,
    bumped whenever a change could change an answer, so that stale cache entries are not reused."""

    answer_version: int = 1

    def __init__(self, model: Any, tokenizer: Any, *, identity: dict[str, Any], **options: Any) -> None:
        self.hold_model(model, identity)
        self.tokenizer = tokenizer

    def hold_model(self, model: Any, identity: dict[str, Any]) -> None:
        self.torch_model = model
        self._identity = identity
        self._was_training = model.training
        model.eval()

    @property
    def device(self) -> Any:
        """Where inputs go: the model's device, or the first one of a device map."""
        return input_device(self.torch_model)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, *, model_id: str | None = None, **options: Any) -> Any:
        """Around an in-memory model (training code's), named `model_id` when given."""
        identity = model_identity(cls.name, cls.answer_version, model, model_id=model_id)
        return cls(model, tokenizer, identity=identity, **options)

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def close(self) -> None:
        self.torch_model.train(self._was_training)
