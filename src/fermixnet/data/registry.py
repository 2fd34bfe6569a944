"""One registry of data set adapters, and the `name:root[,key=value]` spec the CLI uses.

Adapters register with `@register_dataset("name", framing=...)`; a factory takes
`(root, split, *, <typed keyword options>)` and returns a `FERDataset`. `framing` declares how
the format frames its faces (`fermixnet.framing`: `template`, `box:<margin>`, `as_given`); a
spec's `framing=` option overrides it, and checkpoints record the training data's framing.
Options given on the command line arrive as strings; `create_dataset` coerces them to the
factory's typed keywords (`coerce_options`: bool, int, `Literal` choices, `X | None`), so
factories receive typed values.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from fermixnet.data.base import FERDataset
from fermixnet.data.duplicates import drop_leaked
from fermixnet.framing import Framing, parse_framing

Factory = Callable[..., FERDataset]
_REGISTRY: dict[str, Factory] = {}
_FRAMINGS: dict[str, Framing] = {}
# Modules that register adapters when imported; optional ones may be absent in a build.
_ADAPTER_MODULES: tuple[str, ...] = (
    "fermixnet.data.folder",
    "fermixnet.data.manifest",
    "fermixnet.data.rafdb",
    "fermixnet.data.ferplus",
    "fermixnet.data.fer2013",
    "fermixnet.data.affectnet",
    "fermixnet.data.fedro",
    "fermixnet.synth.generate",
)
_loaded = False
SPLITS: tuple[str, ...] = ("train", "val", "test", "all")
# Options every adapter takes, handled by `create_dataset` (docs/data.md, "Options every adapter
# takes"); an adapter's own options are its factory's typed keywords (`adapter_options`).
COMMON_OPTIONS: tuple[str, ...] = ("split", "only", "exclude_leaked", "framing", "name",
                                   "occluded", "detect_landmarks")  # fmt: skip


def register_dataset(name: str, framing: str = "as_given") -> Callable[[Factory], Factory]:
    """Decorator: make `factory(root, split, **options)` available as `create_dataset(name, ...)`.

    The factory's keyword options are its spec options: annotate them (`bool`, `int`,
    `Literal[...]`, `X | None`) and `coerce_options` turns the spec's text into those types;
    the names in `COMMON_OPTIONS` are taken by `create_dataset`.

    Args:
        name: the adapter's name in specs.
        framing: how the format frames faces (`template`, `box:<margin>`, `as_given`).

    Raises:
        ValueError: `name` is already registered by another factory, or a bad framing.
    """
    declared = parse_framing(framing)

    def wrap(factory: Factory) -> Factory:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"data set adapter {name!r} is already registered")
        _REGISTRY[name] = factory
        _FRAMINGS[name] = declared
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
    adapter: str, root: str | Path, split: str | None = None, /, **options: Any
) -> FERDataset:
    """Read data set `adapter` from `root` for `split`.

    `adapter`, `root` and `split` are positional-only, so every spec option, `name=` and
    `split=` included, can be passed as a keyword.

    Args:
        adapter: a registered adapter (`list_datasets()`): rafdb, ferplus, affectnet, fedro,
            folder, manifest, ...
        root: the data folder (or, for `manifest`, the CSV file itself).
        split: train, val, test (or all, where the adapter allows it); None: the adapter's
            default (train, except test for the test-only FED-RO).
        **options: the spec's options; strings (from the CLI) are coerced to the adapter's
            typed keywords (`coerce_options`). Common to all adapters (`COMMON_OPTIONS`):
            `split=` reads that split instead of `split`; `only=<subset key>` keeps one
            evaluation subset (e.g. `only=occluded`, `only=pose>45`); `exclude_leaked=1` drops
            the images whose decoded pixels occur in another split of the same data set (a
            strictly held-out test set; see `duplicates.drop_leaked`); `framing=` overrides the
            adapter's framing; `name=` names the set in reports (`eval_set_names`);
            `occluded=true` marks every image occluded (a folder of occluded faces, so reports
            count it among the occluded sets); `detect_landmarks=<detector>` has the cache run
            that face detector on the samples without landmarks of their own
            (`fermixnet.data.landmark_detection`; the name is checked by the detector factory
            the cache is given).

    Raises:
        ValueError: unknown adapter or option, or a bad value; messages name what was expected.
        FileNotFoundError: `root` or a file the format needs is missing.
    """
    check_options(adapter, options)  # every option and value, before reading anything
    split = options.pop("split", None) or split
    only = options.pop("only", None)
    exclude_leaked = as_bool(options.pop("exclude_leaked", False), "exclude_leaked")
    label = options.pop("name", None)  # a label for reports (`eval_set_names`)
    if label is not None and not str(label).strip():
        raise ValueError(f"{adapter}: option name={label!r}: expected a non-empty label")
    framing = dataset_framing(adapter, options.pop("framing", None))
    occluded = as_bool(options.pop("occluded", False), "occluded")
    detector = str(options.pop("detect_landmarks", None) or "").strip() or None
    typed = coerce_options(adapter, options)
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"{adapter}: data root {root} does not exist (see docs/data.md for the expected layout)"
        )
    dataset = _read(adapter, root, split, typed)
    dataset.landmark_detector = detector  # before any subset: subsets ask their parent
    if exclude_leaked:
        dataset = drop_leaked(dataset, adapter, lambda other: _read(adapter, root, other, typed))
    if occluded:  # before `only`, so that `occluded=1,only=occluded` keeps every image
        dataset.samples = [replace(s, meta={**s.meta, "occluded": "1"}) for s in dataset.samples]
    if only:
        subsets = dataset.subsets()
        if only not in subsets:
            raise ValueError(
                f"{adapter}: only={only!r} matches no samples; subsets present: "
                f"{', '.join(sorted(subsets)) or 'none'}"
            )
        dataset = dataset.subset(subsets[only])
    dataset.framing = framing
    return dataset


def _read(adapter: str, root: Path, split: str | None, options: dict[str, Any]) -> FERDataset:
    """The adapter's factory on already coerced options (no common option applied)."""
    factory = _REGISTRY[adapter]
    dataset = factory(root, split, **options) if split else factory(root, **options)
    dataset.report.skip_bad = bool(options.get("skip_bad", False))
    return dataset


def dataset_framing(name: str, override: str | None = None) -> Framing:
    """The framing of adapter `name`'s images: `override` (a spec's `framing=`) or its declared one.

    Raises:
        ValueError: unknown adapter or a bad framing text.
    """
    _load_adapters()
    if name not in _REGISTRY:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(list_datasets())}")
    return _FRAMINGS[name] if override is None else parse_framing(override)


def spec_framing(spec: str) -> Framing:
    """The framing of a `name:root[,framing=...]` spec, without reading any data."""
    name, _, options = parse_data_spec(spec)
    return dataset_framing(name, options.get("framing"))


def check_options(adapter: str, options: dict[str, Any]) -> None:
    """Check a spec's options without reading any data: the adapter exists, every option is
    one it or `COMMON_OPTIONS` takes, and every value fits its type.

    Raises:
        ValueError: naming the adapter, the option and what was expected.
    """
    _load_adapters()
    if adapter not in _REGISTRY:
        raise ValueError(
            f"unknown data set {adapter!r}; expected one of {', '.join(list_datasets())}"
        )
    coerce_options(adapter, {k: v for k, v in options.items() if k not in COMMON_OPTIONS})
    try:
        for option in ("exclude_leaked", "occluded"):
            as_bool(options.get(option, False), option)
        if "name" in options and not str(options["name"]).strip():
            raise ValueError("option name='': expected a non-empty label")
        if options.get("split"):
            check_split(adapter, str(options["split"]), SPLITS)
        dataset_framing(adapter, options.get("framing"))
    except ValueError as err:
        text = str(err)
        raise ValueError(text if text.startswith(f"{adapter}:") else f"{adapter}: {text}") from None


def adapter_options(adapter: str) -> dict[str, Any]:
    """The typed keywords of an adapter's factory: {option: type hint} (no common option)."""
    _load_adapters()
    factory = _REGISTRY[adapter]
    hints = get_type_hints(factory)
    params = inspect.signature(factory).parameters
    return {p: hints.get(p, Any) for p in params if p not in ("root", "split")
            and params[p].kind is not inspect.Parameter.VAR_KEYWORD}  # fmt: skip


def coerce_options(adapter: str, options: dict[str, Any]) -> dict[str, Any]:
    """The adapter's options as its factory's typed keywords (the one place CLI strings are
    coerced: `bool`, `int`, `float`, `Literal[...]` choices, `X | None`).

    Raises:
        ValueError: an option the adapter does not take (naming the accepted ones) or a value
            that does not fit its type (naming the option and what was expected).
    """
    accepted = adapter_options(adapter)
    factory = _REGISTRY[adapter]
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD
                     for p in inspect.signature(factory).parameters.values())  # fmt: skip
    unknown = sorted(set(options) - set(accepted))
    if unknown and not open_ended:
        raise ValueError(
            f"{adapter}: unknown option(s) {', '.join(unknown)}; accepted: "
            f"{', '.join([*accepted, *COMMON_OPTIONS])}"
        )
    try:
        return {k: coerce(v, accepted.get(k, Any), k) for k, v in options.items()}
    except ValueError as err:
        raise ValueError(f"{adapter}: {err}") from None


def coerce(value: Any, hint: Any, option: str) -> Any:
    """`value` (a CLI string or a Python value) as type `hint`.

    Raises:
        ValueError: naming the option and what was expected.
    """
    if value is None:
        return None
    origin, args = get_origin(hint), get_args(hint)
    if origin is Union or origin is UnionType:
        kinds = [a for a in args if a is not type(None)]
        if type(None) in args and isinstance(value, str) and not value.strip():
            return None
        # `str | Mapping` (class_map): a CLI string is the string form, the adapter parses it
        return coerce(value, kinds[0], option) if len(kinds) == 1 else value
    if origin is Literal:
        text = str(value).strip().lower()
        for choice in args:
            if value == choice or text == str(choice).lower():
                return choice
        raise ValueError(f"option {option}={value!r}: expected one of "
                         f"{', '.join(map(str, args))}")  # fmt: skip
    if hint is bool:
        return as_bool(value, option)
    if hint is int:
        return as_int(value, option)
    if hint is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"option {option}={value!r}: expected a number") from None
    return value


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


def eval_set_names(specs: Sequence[str]) -> list[str]:
    """Report names of test specs: the `name=` option, else the root's folder name.

    Roots that share a folder name take their parent folders too (`a-occluded`, `b-occluded`);
    specs of one root differ by their `split=` (`RAF-DB-val`), else by a number (`RAF-DB-2`).
    Names depend only on the specs, so runs and reports of the same specs agree.

    Raises:
        ValueError: two specs given the same `name=`.
    """
    parsed = [parse_data_spec(spec) for spec in specs]
    paths = [_name_parts(name, root) for name, root, _ in parsed]
    depth = [1] * len(specs)
    names = [opts.get("name") or "" for _, _, opts in parsed]
    given = [n for n in names if n]
    if len(set(given)) < len(given):
        raise ValueError(f"data specs {list(specs)}: two test sets have the same name= option")
    while True:  # lengthen clashing automatic names by parent folders while they have any
        auto = [n or "-".join(p[-d:]) for p, d, n in zip(paths, depth, names, strict=True)]
        clash = [i for i, a in enumerate(auto) if not names[i] and depth[i] < len(paths[i])
                 and any(b == a and paths[j] != paths[i] for j, b in enumerate(auto))]
        if not clash:
            break
        for i in clash:
            depth[i] += 1
    out: list[str] = []
    for i, label in enumerate(auto):
        if auto.count(label) > 1 and "split" in parsed[i][2]:
            label = f"{label}-{parsed[i][2]['split']}"
        base = label = re.sub(r"[^\w.=+-]+", "_", label)
        n = 2
        while label in out:
            label, n = f"{base}-{n}", n + 1
        out.append(label)
    return out


def _name_parts(adapter: str, root: str) -> list[str]:
    """Folder names of a spec's root, outermost first (a `manifest.csv` root: its folder's)."""
    path = Path(root).expanduser()
    parts = [p for p in path.parts if p not in (path.anchor, "", ".", "..")]
    if path.suffix and parts:
        parts[-1] = path.stem
        if path.stem.lower() in ("manifest", "labels", "list") and len(parts) > 1:
            parts.pop()
    return parts or [adapter]


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
