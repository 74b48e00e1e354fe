"""Task options from `--task-args` (strings) or Python (values), converted and checked in one place."""

from __future__ import annotations

from typing import Any

from mu_eval.data import DataError

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def option(options: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """`options[name]` as `kind` (int, float, bool or str), `default` when absent or 'none'."""
    value = options.get(name, default)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return default
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.strip().lower() in TRUE:
                    return True
                if value.strip().lower() in FALSE:
                    return False
                raise ValueError(value)
            return bool(value)
        return kind(value)
    except (TypeError, ValueError):
        raise DataError(f"task option {name}={value!r}: expected {kind.__name__}") from None
