"""How every option value is read: model args, task, method, attack and protocol options alike.

Options arrive as strings from the command line (`--method-args steps=10,lora=true`) or as Python values
from the API. Each owner declares its options as a dataclass (`Options`); `parse_options` converts the raw
values to the declared types, checks bounds and choices, and rejects an unknown key with the closest valid
one, so a typo never runs the default silently. The same words mean the same thing everywhere:

- booleans: true/1/yes/on and false/0/no/off (any case);
- "none", "null" or an empty value: unset, for an option declared `X | None`;
- lists: items separated by "+", ";" or "|" (the comma already separates options on the command line;
  from Python a list or tuple, or a string with commas, works too).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
NONE_WORDS = ("none", "null", "")
LIST_SEPARATORS = re.compile(r"[+;|,]")

T = TypeVar("T")


class OptionError(ValueError):
    """An option that is unknown, or whose value does not convert to its declared type or range."""


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str = "",
    minimum: float | None = None,
    maximum: float | None = None,
    choices: Iterable[Any] = (),
    prefix: str = "",
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with what the parser checks: `minimum`/`maximum` for numbers (each item of a list),
    `choices` for strings; `prefix` makes a `dict[str, ...]` field collect every `prefix.KEY=VALUE`."""
    metadata = {"help": help, "minimum": minimum, "maximum": maximum, "choices": tuple(choices), "prefix": prefix}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def parse_bool(value: Any, where: str = "value") -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise OptionError(f"{where}={value!r}: expected true or false")


def untyped_value(value: Any) -> Any:
    """A value whose type only its consumer knows (e.g. `processor.KEY=VALUE`, handed to a library): the
    boolean words (not 0/1, which stay numbers) become booleans, numbers become int or float, anything
    else stays as it is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in TRUE_WORDS[:1] + TRUE_WORDS[2:]:
        return True
    if text.lower() in FALSE_WORDS[:1] + FALSE_WORDS[2:]:
        return False
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return value


def is_none_word(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS)


def split_list(value: Any) -> list[Any]:
    """The items of a list value: a string is split at the list separators, blanks dropped."""
    if isinstance(value, str):
        return [part.strip() for part in LIST_SEPARATORS.split(value) if part.strip()]
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        return [item.strip() if isinstance(item, str) else item for item in value]
    return [value]


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " or ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    if origin in (tuple, list):
        return f"a list of {_type_name(args[0]) if args else 'str'}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def convert(value: Any, annotation: Any, where: str) -> Any:
    """`value` as `annotation` (bool, int, float, str, Literal, X | None, tuple/list of those, Any)."""
    if annotation is Any:
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and is_none_word(value):
            return None
        errors = []
        for candidate in (a for a in args if a is not type(None)):
            try:
                return convert(value, candidate, where)
            except OptionError as error:
                errors.append(error)
        raise OptionError(f"{where}={value!r}: expected {_type_name(annotation)}")
    if origin in (tuple, list):
        item_type = args[0] if args else str
        items = [convert(item, item_type, where) for item in split_list(value)]
        return tuple(items) if origin is tuple else items
    if origin is Literal:
        text = str(value).strip() if not isinstance(value, bool) else value
        if text in args:
            return text
        raise OptionError(f"{where}={value!r}: expected one of {', '.join(map(str, args))}")
    if annotation is bool:
        return parse_bool(value, where)
    if annotation is int:
        if isinstance(value, bool):
            raise OptionError(f"{where}={value!r}: expected an integer")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise OptionError(f"{where}={value!r}: expected an integer") from None
    if annotation is float:
        if isinstance(value, bool):
            raise OptionError(f"{where}={value!r}: expected a number")
        try:
            return float(str(value).strip()) if not isinstance(value, int | float) else float(value)
        except ValueError:
            raise OptionError(f"{where}={value!r}: expected a number") from None
    if annotation is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise OptionError(f"{where}={value!r}: expected a string")
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise OptionError(f"{where}={value!r}: expected {_type_name(annotation)}")


def _canonical_choice(value: Any, choices: tuple[Any, ...]) -> Any:
    """A string choice given in another case or with spaces around it, as the option spells it."""
    if isinstance(value, str):
        for choice in choices:
            if isinstance(choice, str) and value.strip().lower() == choice.lower():
                return choice
    return value


def _check_range(value: Any, metadata: Mapping[str, Any], where: str) -> Any:
    """`value` with string choices spelled as declared; an error when it is out of bounds or not a choice."""
    minimum, maximum, choices = metadata.get("minimum"), metadata.get("maximum"), metadata.get("choices") or ()
    if choices:
        if isinstance(value, list):
            value = [_canonical_choice(item, choices) for item in value]
        elif isinstance(value, tuple):
            value = tuple(_canonical_choice(item, choices) for item in value)
        else:
            value = _canonical_choice(value, choices)
    for item in value if isinstance(value, list | tuple) else (value,):
        if item is None:
            continue
        if minimum is not None and item < minimum:
            raise OptionError(f"{where}={item!r}: must be at least {minimum:g}")
        if maximum is not None and item > maximum:
            raise OptionError(f"{where}={item!r}: must be at most {maximum:g}")
        if choices and item not in choices:
            raise OptionError(f"{where}={item!r}: expected one of {', '.join(map(str, choices))}")
    return value


def closest(name: str, valid: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_option(owner: str, keys: str | Iterable[str], valid: Iterable[str], subject: str = "") -> OptionError:
    """The error for keys `owner` does not accept, each with the closest valid key. `subject` replaces the
    opening "OWNER has no option" (e.g. "no task of this run has the option")."""
    keys = [keys] if isinstance(keys, str) else sorted(keys)
    valid = list(dict.fromkeys(valid))
    named = []
    for key in keys:
        guess = closest(key, valid)
        named.append(f"{key!r}" + (f" (did you mean {guess!r}?)" if guess else ""))
    listing = f"; valid options: {', '.join(valid)}" if valid else "; it takes no options"
    return OptionError(f"{subject or owner + ' has no option'} {' or '.join(named)}{listing}")


def option_fields(options_type: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(options_type) if f.init]


def parse_options(options_type: type[T], values: Mapping[str, Any] | None, owner: str) -> T:
    """An `options_type` instance from raw `values`; `owner` (e.g. "method 'npo'") names it in errors."""
    hints = typing.get_type_hints(options_type)
    fields = {f.name: f for f in option_fields(options_type)}
    prefixed = {f.metadata["prefix"]: f.name for f in fields.values() if f.metadata.get("prefix")}
    converted: dict[str, Any] = {}
    plain = [name for name, f in fields.items() if not f.metadata.get("prefix")]

    def prefix_of(key: str) -> str | None:
        return next((p for p in prefixed if key.startswith(p) and len(key) > len(p)), None)

    unknown = [str(key) for key in (values or {}) if str(key) not in plain and prefix_of(str(key)) is None]
    if unknown:
        raise unknown_option(owner, unknown, plain + [f"{p}KEY" for p in prefixed])
    for key, value in (values or {}).items():
        key = str(key)
        prefix = prefix_of(key)
        if prefix is not None:
            converted.setdefault(prefixed[prefix], {})[key[len(prefix):]] = value
            continue
        where = f"{owner} option {key}"
        value = convert(value, hints[key], where)
        converted[key] = _check_range(value, fields[key].metadata, where)
    return options_type(**converted)


def describe_options(options_type: type) -> list[dict[str, Any]]:
    """Name, type, default and help of each option (for `mu-eval list` and the docs)."""
    hints = typing.get_type_hints(options_type)
    described = []
    for f in option_fields(options_type):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        name = f"{f.metadata['prefix']}KEY" if f.metadata.get("prefix") else f.name
        described.append({"name": name, "type": _type_name(hints[f.name]), "default": default,
                          "help": f.metadata.get("help", "")})
    return described


def parse_key_values(text: str | None, what: str = "options") -> dict[str, str]:
    """`a=1,b=x` -> {"a": "1", "b": "x"}. An item without "=" continues the previous value as a list item
    (`steps=0,10,25` is steps "0,10,25"), so lists may use commas too; a first item without "=" is an error."""
    pairs: dict[str, str] = {}
    last: str | None = None
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            if last is None:
                raise OptionError(f"{what}: expected key=value, got {item!r}")
            pairs[last] += "," + item
            continue
        key, value = (part.strip() for part in item.split("=", 1))
        if not key:
            raise OptionError(f"{what}: expected key=value, got {item!r}")
        if key in pairs:
            raise OptionError(f"{what}: {key!r} is given twice")
        pairs[key] = value
        last = key
    return pairs


def option_names(options_type: type | None) -> set[str]:
    """The keys an `Options` dataclass accepts (none for None)."""
    return {f.name for f in option_fields(options_type)} if options_type is not None else set()


def route_options(
    raw: Mapping[str, Any], accepted: Mapping[str, Iterable[str]], kind: str
) -> dict[str, dict[str, Any]]:
    """Share one `--task-args`/`--attack-args` string among the run's tasks or attacks.

    `accepted` maps each name to the keys it declares. `name.key=value` goes to that one; a bare `key=value`
    goes to every one that declares `key`. A name or key nobody accepts is an error naming the closest.
    """
    keys_of = {name: set(keys) for name, keys in accepted.items()}
    routed: dict[str, dict[str, Any]] = {name: {} for name in keys_of}
    for raw_key, value in raw.items():
        target, _, key = str(raw_key).rpartition(".")
        if target:
            if target not in keys_of:
                guess = closest(target, keys_of)
                hint = f"; did you mean {guess!r}?" if guess else ""
                raise OptionError(f"option {raw_key!r}: this run has no {kind} {target!r}{hint}")
            if key not in keys_of[target]:
                raise unknown_option(f"{kind} {target!r}", key, sorted(keys_of[target]))
            routed[target][key] = value
            continue
        owners = [name for name, keys in keys_of.items() if key in keys]
        if not owners:
            names = ", ".join(map(repr, keys_of))
            subject = (f"{kind} {names} has no option" if len(keys_of) == 1
                       else f"no {kind} of this run ({names}) has the option")
            raise unknown_option("", key, sorted({k for keys in keys_of.values() for k in keys}), subject)
        for name in owners:
            routed[name][key] = value
    return routed
