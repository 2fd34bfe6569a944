"""One registry of data set adapters, and the `name:root[,key=value]` spec the CLI uses.

Adapters register with `@register_dataset("name", framing=...)`; a factory takes
`(root, split, **options)` and returns a `FERDataset`. `framing` declares how the format frames its
faces (`fermixnet.framing`: `template`, `box:<margin>`, `as_given`); a spec's `framing=` option
overrides it, and checkpoints record the training data's framing. Options given on the command
line arrive as strings, so factories coerce them with `as_bool` / `as_int`.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fermixnet.data.base import FERDataset
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


def register_dataset(name: str, framing: str = "as_given") -> Callable[[Factory], Factory]:
    """Decorator: make `factory(root, split, **options)` available as `create_dataset(name, ...)`.

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
            `only=<subset key>` keeps one evaluation subset (e.g. `only=occluded`, `only=pose>45`);
            `exclude_leaked=1` drops the images whose decoded pixels occur in another split of the
            same data set (a strictly held-out test set; see `duplicates.drop_leaked`);
            `framing=` overrides the adapter's framing; `name=` names the set in reports;
            `occluded=true` marks every image occluded (a folder of occluded faces, so reports
            count it among the occluded sets).

    Raises:
        ValueError: unknown adapter or option, or a bad value; messages name what was expected.
        FileNotFoundError: `root` or a file the format needs is missing.
    """
    _load_adapters()
    if name not in _REGISTRY:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(list_datasets())}")
    only = options.pop("only", None)
    exclude_leaked = as_bool(options.pop("exclude_leaked", False), "exclude_leaked")
    options.pop("name", None)  # a label for reports (`eval_set_names`), not an adapter option
    framing = dataset_framing(name, options.pop("framing", None))
    occluded = as_bool(options.pop("occluded", False), "occluded")
    factory = _REGISTRY[name]
    _check_options(name, factory, options)
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"{name}: data root {root} does not exist (see docs/data.md for the expected layout)"
        )
    dataset = factory(root, split, **options) if split else factory(root, **options)
    dataset.report.skip_bad = as_bool(options.get("skip_bad", False), "skip_bad")
    if exclude_leaked:
        from fermixnet.data.duplicates import drop_leaked

        dataset = drop_leaked(dataset, name, str(root), options)
    if only:
        subsets = dataset.subsets()
        if only not in subsets:
            raise ValueError(
                f"{name}: only={only!r} matches no samples; subsets present: "
                f"{', '.join(sorted(subsets)) or 'none'}"
            )
        dataset = dataset.subset(subsets[only])
    dataset.framing = framing
    if occluded:
        dataset.samples = [replace(s, meta={**s.meta, "occluded": "1"}) for s in dataset.samples]
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


def _check_options(name: str, factory: Factory, options: dict[str, Any]) -> None:
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [p for p in params if p not in ("root", "split")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {', '.join(unknown)}; accepted: "
            f"{', '.join([*accepted, 'only', 'exclude_leaked', 'framing', 'name', 'occluded'])}"
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
