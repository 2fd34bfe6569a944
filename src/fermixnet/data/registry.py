"""One registry of data set adapters, and the `name:root[,key=value]` spec the CLI uses.

Adapters register with `@register_dataset("name")`; a factory takes `(root, split, **options)` and
returns a `FERDataset`. Options given on the command line arrive as strings, so factories coerce
them with `as_bool` / `as_int`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fermixnet.data.base import FERDataset

Factory = Callable[..., FERDataset]
_REGISTRY: dict[str, Factory] = {}
# Modules that register adapters when imported; optional ones may be absent in a build.
_ADAPTER_MODULES: tuple[str, ...] = (
    "fermixnet.data.folder",
    "fermixnet.data.manifest",
    "fermixnet.data.rafdb",
    "fermixnet.data.ferplus",
    "fermixnet.data.affectnet",
    "fermixnet.data.fedro",
    "fermixnet.synth.generate",
)
_loaded = False
SPLITS: tuple[str, ...] = ("train", "val", "test", "all")


def register_dataset(name: str) -> Callable[[Factory], Factory]:
    """Decorator: make `factory(root, split, **options)` available as `create_dataset(name, ...)`.

    Raises:
        ValueError: `name` is already registered by another factory.
    """

    def wrap(factory: Factory) -> Factory:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"data set adapter {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return wrap


def _load_adapters() -> None:
    global _loaded
    if _loaded:
        return
    for module in _ADAPTER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
    _loaded = True


def list_datasets() -> list[str]:
    """Names accepted by `create_dataset`, sorted."""
    _load_adapters()
    return sorted(_REGISTRY)


def create_dataset(
    name: str, root: str | Path, split: str | None = None, **options: Any
) -> FERDataset:
    """Read data set `name` from `root` for `split`.

    Args:
        name: a registered adapter (`list_datasets()`): rafdb, ferplus, affectnet, fedro, folder,
            manifest, ...
        root: the data folder (or, for `manifest`, the CSV file itself).
        split: train, val, test (or all, where the adapter allows it); None: the adapter's
            default (train, except test for the test-only FED-RO).
        **options: adapter options (strings from the CLI are coerced). Common to all adapters:
            `only=<subset key>` keeps one evaluation subset (e.g. `only=occluded`, `only=pose>45`).

    Raises:
        ValueError: unknown adapter or option, or a bad value; messages name what was expected.
        FileNotFoundError: `root` or a file the format needs is missing.
    """
    _load_adapters()
    if name not in _REGISTRY:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(list_datasets())}")
    only = options.pop("only", None)
    factory = _REGISTRY[name]
    _check_options(name, factory, options)
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"{name}: data root {root} does not exist (see docs/data.md for the expected layout)"
        )
    dataset = factory(root, split, **options) if split else factory(root, **options)
    if only:
        subsets = dataset.subsets()
        if only not in subsets:
            raise ValueError(
                f"{name}: only={only!r} matches no samples; subsets present: "
                f"{', '.join(sorted(subsets)) or 'none'}"
            )
        dataset = dataset.subset(subsets[only])
    return dataset


def _check_options(name: str, factory: Factory, options: dict[str, Any]) -> None:
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [p for p in params if p not in ("root", "split")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {', '.join(unknown)}; accepted: "
            f"{', '.join([*accepted, 'only'])}"
        )


def parse_data_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split a CLI data spec `name:root[,key=value...]` into (name, root, options).

    Raises:
        ValueError: no `name:` prefix, an empty root, or an option without `=`.
    """
    name, sep, rest = spec.partition(":")
    if not sep or not name or not rest:
        raise ValueError(
            f"data spec {spec!r} must look like NAME:ROOT[,key=value...], e.g. rafdb:/data/RAF-DB"
        )
    root, *pairs = rest.split(",")
    options: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"data spec {spec!r}: option {pair!r} must be key=value")
        options[key.strip()] = value.strip()
    return name.strip().lower(), root, options


def as_bool(value: Any, option: str) -> bool:
    """Coerce an option value (bool or string such as 1/0/true/false/yes/no).

    Raises:
        ValueError: naming the option and the accepted spellings.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"option {option}={value!r}: expected true/false (or 1/0)")


def as_int(value: Any, option: str) -> int:
    """Coerce an option value to int.

    Raises:
        ValueError: naming the option.
    """
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"option {option}={value!r}: expected an integer") from None


def check_split(name: str, split: str, allowed: tuple[str, ...]) -> str:
    """Normalise split aliases (valid/validation -> val) and check it is one of `allowed`.

    Raises:
        ValueError: naming the data set and the allowed splits.
    """
    split = {"valid": "val", "validation": "val", "training": "train"}.get(split, split)
    if split not in allowed:
        raise ValueError(f"{name}: split must be one of {', '.join(allowed)}, got {split!r}")
    return split
