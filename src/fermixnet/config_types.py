"""From a plain YAML tree to typed config dataclasses (`fermixnet.config`): each value is
converted to its field's annotation, and an unknown key raises `ValueError` with close matches."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any


def plain_tree(value: Any) -> Any:
    """Nested dicts and lists of a dataclass tree (tuples as lists), as YAML writes them."""
    if isinstance(value, dict):
        return {k: plain_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_tree(v) for v in value]
    return value


def _all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key a config accepts (for 'did you mean' suggestions)."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        keys.append(key)
        if dataclasses.is_dataclass(hints[f.name]):
            keys.extend(_all_keys(hints[f.name], key + "."))
    return keys


def _unknown_key_error(key: str, root: type) -> ValueError:
    valid = _all_keys(root)
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.75)
    if not close:  # fall back to keys of the same section, or to the last component
        section = key.rsplit(".", 1)[0] + "."
        close = [k for k in valid if k.startswith(section)][:6] or [
            f.name for f in dataclasses.fields(root)
        ]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"unknown config key '{key}'{hint}")


def build_dataclass(root: type, data: Mapping[str, Any]) -> Any:
    """Build the dataclass `root` (and its nested sections) from a plain tree, converting each
    value to its annotated type.

    Raises:
        ValueError: an unknown key (with close matches) or a value of the wrong type, naming the
            dotted key.
    """
    return _build(root, data, "", root)


def _build(cls: type, data: Mapping[str, Any], prefix: str, root: type) -> Any:
    if not isinstance(data, Mapping):
        raise ValueError(f"config key '{prefix.rstrip('.') or '<root>'}' must be a mapping, "
                         f"got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown_key_error(f"{prefix}{key}", root)
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}", root)
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, key: str, root: type) -> Any:
    """Convert a YAML value to the annotated type, or raise naming the key."""
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, key + ".", root)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, root)
    if tp is Any:
        return value
    if origin is list:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"config key '{key}' must be a list, got {value!r}")
        return [_coerce(v, args[0], key, root) for v in items]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ValueError(f"config key '{key}' must be a list of {len(args)} numbers, "
                             f"got {value!r}")
        return tuple(_coerce(v, a, key, root) for v, a in zip(value, args, strict=True))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"config key '{key}' must be a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], key, root) for k, v in value.items()}
    return _coerce_scalar(value, tp, key)


def _coerce_scalar(value: Any, tp: type, key: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, (str, bool)):
            return value  # bool kept: TrainConfig maps YAML on/off
        if isinstance(value, (int, float)):
            return str(value)
    raise ValueError(f"config key '{key}' must be {tp.__name__}, got {value!r}")
