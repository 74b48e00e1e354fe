"""The key/value cache's name at the transformers boundary, which changed in transformers 5.2x.

Earlier releases take and return `past_key_values`; newer ones take and return `cache` and warn on the
old name. Code that feeds a model its own cache step by step asks here instead of naming either.
"""

from __future__ import annotations

import inspect
from typing import Any

NEW_NAME = "cache"
OLD_NAME = "past_key_values"


def cache_keyword(model: Any) -> str:
    """The keyword `model.forward` takes its key/value cache by, on this transformers release."""
    parameters = inspect.signature(model.forward).parameters
    return NEW_NAME if NEW_NAME in parameters else OLD_NAME


def returned_cache(output: Any) -> Any:
    """The key/value cache a forward pass returned, under whichever name the release uses."""
    keys = output.keys() if hasattr(output, "keys") else ()
    if NEW_NAME in keys:
        return output[NEW_NAME]
    if OLD_NAME in keys:
        return output[OLD_NAME]
    return None


def passed_cache(kwargs: dict[str, Any]) -> Any:
    """The key/value cache a caller passed in `kwargs` (for forward hooks), or None."""
    cache = kwargs.get(NEW_NAME)
    return cache if cache is not None else kwargs.get(OLD_NAME)
