"""YAML recipe files and `--set` overrides, as plain nested dicts (validated by `fermixnet.config`).

`_base_: other.yaml` (or a list of files) merges a recipe over its bases, paths relative to the
file; `--set a.b=value` parses `value` as YAML and sets it in the tree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

BASE_KEY = "_base_"


def merge_trees(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; mappings merge key by key, everything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key != "probs":
            out[key] = merge_trees(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml_tree(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML recipe and resolve its `_base_` chain (paths relative to the file)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    if path in _seen:
        raise ValueError(f"config {path}: '_base_' cycle through {[str(p) for p in _seen]}")
    with path.open(encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"config {path}: invalid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"config {path}: top level must be a mapping of sections")
    bases = data.pop(BASE_KEY, None)
    merged: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases or []:
        merged = merge_trees(merged, read_yaml_tree(path.parent / base, (*_seen, path)))
    return merge_trees(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b=value` into a key path and a YAML-parsed value."""
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like key=value, e.g. train.epochs=10")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `key=value` overrides to a nested dict (validated later by `Config.from_dict`)."""
    data = merge_trees({}, data)
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ValueError(f"override {text!r}: '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return data
