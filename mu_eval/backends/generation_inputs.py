"""The tokenizer outputs a model's `generate` is given: `token_type_ids` only where the model names them.

A tokenizer may return `token_type_ids` for a model with no use for them (a fast tokenizer built from scratch
does by default). transformers 5 passes them on to a forward that ignores them; 4.x's `generate` refuses any
input its model's `forward` does not name. Dropping them there gives both the same answers.
"""

from __future__ import annotations

import inspect
from typing import Any

OPTIONAL_INPUT = "token_type_ids"


def generation_inputs(model: Any, encoded: dict[str, Any]) -> dict[str, Any]:
    """`encoded` without `token_type_ids` unless `model.forward` takes them by name."""
    if OPTIONAL_INPUT not in encoded or OPTIONAL_INPUT in inspect.signature(model.forward).parameters:
        return dict(encoded)
    return {key: value for key, value in encoded.items() if key != OPTIONAL_INPUT}
