"""The keyword `from_pretrained` takes the weights' dtype by, which changed in transformers 4.56.

Earlier releases take `torch_dtype` and hand an unknown `dtype` on to the model's constructor (a TypeError);
4.56 and later take `dtype` and warn on the old name. Loaders ask here instead of naming either.
"""

from __future__ import annotations

from functools import cache
from typing import Any

NEW_NAME = "dtype"
OLD_NAME = "torch_dtype"
FIRST_RELEASE_WITH_NEW_NAME = (4, 56)


@cache
def dtype_keyword() -> str:
    """The keyword `from_pretrained` takes its dtype by, on the installed transformers release."""
    import transformers
    from packaging.version import Version

    release = Version(transformers.__version__).release
    return NEW_NAME if release >= FIRST_RELEASE_WITH_NEW_NAME else OLD_NAME


def dtype_argument(dtype: Any) -> dict[str, Any]:
    """`{keyword: dtype}` to spread into a `from_pretrained` call."""
    return {dtype_keyword(): dtype}
