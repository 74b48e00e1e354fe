"""What else, besides the weights, decides a loaded model's answers: the part of a backend's identity (and so
of the answer-cache key) that comes from its settings, its tokenizer, its config and the libraries it runs on.

Two runs whose identities differ in any of these may give different answers, so neither may be served the
other's cached answers: a model argument such as `max_length` or `attn_implementation`, the chat template
that formats prompts, an edited tokenizer or config beside unchanged weights, another transformers or torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tokenizer_sha256(tokenizer: Any) -> str | None:
    """A hash of everything the tokenizer does: a fast tokenizer's full serialisation, else its vocabulary and
    special tokens (a processor is hashed through the tokenizer it holds)."""
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    if tokenizer is None:
        return None
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        text = backend.to_str()
    elif hasattr(tokenizer, "get_vocab"):
        text = json.dumps(sorted(tokenizer.get_vocab().items()))
    else:
        return None
    special = json.dumps(getattr(tokenizer, "special_tokens_map", {}), sort_keys=True, default=str)
    return text_sha256(text + special + type(tokenizer).__name__)


def chat_template_sha256(tokenizer: Any, use_chat_template: bool) -> str | None:
    """The chat template that formats the prompts, hashed; None when prompts are plain."""
    template = getattr(tokenizer, "chat_template", None) or getattr(getattr(tokenizer, "tokenizer", None),
                                                                    "chat_template", None)
    if not use_chat_template or not template:
        return None
    return text_sha256(template if isinstance(template, str) else json.dumps(template, sort_keys=True))


def config_sha256(torch_model: Any) -> str | None:
    """The model config (rope scaling, norms, vocabulary size...), which the weight files do not cover."""
    config = getattr(torch_model, "config", None)
    if config is None or not hasattr(config, "to_json_string"):
        return None
    return text_sha256(config.to_json_string(use_diff=False))


def library_versions() -> dict[str, str]:
    """The libraries that compute an answer: another release may round, batch or generate differently."""
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def settings_identity(
    model_args: Any, torch_model: Any, tokenizer: Any, use_chat_template: bool, ignore: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The identity entries a loaded model's answers depend on beyond its weights: every model argument (a
    dataclass; `ignore` names those the identity already holds in effective form), the attention
    implementation in effect, the tokenizer, chat template and config hashes, and the library versions."""
    arguments = {name: value for name, value in dataclasses.asdict(model_args).items() if name not in ignore}
    config = getattr(torch_model, "config", None)
    return {
        "model_args": arguments,
        "attn_implementation": getattr(config, "_attn_implementation", None),
        "tokenizer_sha256": tokenizer_sha256(tokenizer),
        "chat_template_sha256": chat_template_sha256(tokenizer, use_chat_template),
        "config_sha256": config_sha256(torch_model),
        "versions": library_versions(),
    }
