"""Typed attack options.

`--attack-args k=v,...` reaches every attack of a run as strings, so each attack declares the options it
accepts and converts them here. Commas separate the items of `--attack-args`, so list values use `;` or
`|` (`steps=0;10;25`). A key may be namespaced, `relearn.lr=1e-4`, to address one attack; a bare key that
this attack does not know is accepted only when another registered attack knows it (it is meant for that
one), otherwise it is an error that lists the known keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mu_eval.attack import Attack, AttackError

LIST_SEPARATOR = re.compile(r"[;|]")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
KINDS = ("int", "float", "bool", "str", "ints", "floats", "strs")


@dataclass(frozen=True)
class Option:
    """One accepted option: its default, its kind (one of KINDS) and, for strings, the allowed values."""

    default: Any
    kind: str
    help: str = ""
    choices: tuple[str, ...] = ()


def _scalar(attack: str, key: str, kind: str, value: Any) -> Any:
    try:
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in TRUE:
                return True
            if text in FALSE:
                return False
            raise ValueError(value)
        text = str(value).strip()
        return text or None
    except (TypeError, ValueError):
        expected = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(kind, kind)
        raise AttackError(f"attack {attack!r}: option {key}={value!r} is not {expected}") from None


def convert(attack: str, key: str, option: Option, value: Any) -> Any:
    """Convert one raw value (a string from the CLI, or a Python value) to the option's kind."""
    if value is None:
        return None
    if option.kind in ("ints", "floats", "strs"):
        items = LIST_SEPARATOR.split(value) if isinstance(value, str) else list(value)
        items = [item.strip() if isinstance(item, str) else item for item in items]
        items = [item for item in items if item not in ("", None)]
        converted = [_scalar(attack, key, option.kind[:-1], item) for item in items]
    else:
        converted = _scalar(attack, key, option.kind, value)
    allowed = option.choices
    if allowed:
        for item in converted if isinstance(converted, list) else [converted]:
            if item is not None and item not in allowed:
                raise AttackError(f"attack {attack!r}: option {key}={item!r}: expected one of {', '.join(allowed)}")
    return converted


def known_elsewhere(attack: str) -> tuple[set[str], set[str]]:
    """Names of the other registered attacks and the option keys they declare."""
    from mu_eval.plugins import get_registry

    registry = get_registry()
    names, keys = set(), set()
    for name in registry.names("attacks"):
        if name == attack:
            continue
        names.add(name)
        keys.update(getattr(registry.attack(name), "option_spec", {}) or {})
    return names, keys


def parse_options(attack: str, spec: Mapping[str, Option], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overridden by `raw`; unknown keys raise AttackError naming the known ones."""
    values = {key: option.default for key, option in spec.items()}
    others: tuple[set[str], set[str]] | None = None
    for raw_key, value in raw.items():
        target, _, key = str(raw_key).rpartition(".")
        if target and target != attack:
            others = others or known_elsewhere(attack)
            if target not in others[0]:
                raise AttackError(f"option {raw_key!r}: there is no attack named {target!r}")
            continue
        if key not in spec:
            others = others or known_elsewhere(attack)
            if not target and key in others[1]:
                continue  # a bare key meant for another attack of the run
            raise AttackError(
                f"attack {attack!r}: unknown option {key!r}; known options: {', '.join(sorted(spec))}"
            )
        values[key] = convert(attack, key, spec[key], value)
    return values


class ConfiguredAttack(Attack):
    """An attack with declared options, parsed (and checked) when the attack is created."""

    option_spec: dict[str, Option] = {}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.config = parse_options(self.name, self.option_spec, options)

    def settings(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """The parsed options of this run (the context's when it carries any, else the constructor's)."""
        return parse_options(self.name, self.option_spec, options) if options else dict(self.config)
