"""Batch mixing augmentations: FERMix (the method) and the Fig. 8 baselines, one interface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from fermixnet.augment.baselines import CutMix, Cutout, Mixup
from fermixnet.augment.fermix import (
    DEFAULT_PROBS,
    PATTERNS,
    REGIONS,
    FERMix,
    MixParams,
    mix_labels,
    one_hot,
    pattern_probs,
    region_box,
    region_lambda,
)
from fermixnet.augment.landmark_fermix import LandmarkFERMix

MIXERS = {"fermix": FERMix, "fermix_landmarks": LandmarkFERMix, "cutout": Cutout,
          "cutmix": CutMix, "mixup": Mixup}


class MixSpec(Protocol):
    """What `build_mixer` reads of a config's `mix` section (`fermixnet.config.MixConfig`)."""

    method: str
    probs: Mapping[str, float]
    options: Mapping[str, Any]


def build_mixer(
    spec: str | MixSpec, **kwargs: Any
) -> FERMix | LandmarkFERMix | Cutout | CutMix | Mixup | None:
    """Create a batch mixer from a config's `mix` section, or by name with keyword arguments:
    ``fermix``, ``fermix_landmarks``, ``cutout``, ``cutmix``, ``mixup`` (``none``: None).

    From a config, the mixer gets `mix.options` and, for FERMix and its landmark-placed variant,
    `mix.probs` (unless the options give ``probs``).

    Raises:
        ValueError: for an unknown name or arguments the mixer does not take.
    """
    if isinstance(spec, str):
        name = spec
    else:
        name, kwargs = spec.method, {**dict(spec.options), **kwargs}
        if name in ("fermix", "fermix_landmarks"):
            kwargs.setdefault("probs", spec.probs)
    if name == "none":
        return None
    if name not in MIXERS:
        raise ValueError(f"unknown mix method {name!r}; expected one of none, {', '.join(MIXERS)}")
    try:
        return MIXERS[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for mix method {name!r}: {err}") from None


__all__ = [
    "DEFAULT_PROBS",
    "MIXERS",
    "PATTERNS",
    "REGIONS",
    "CutMix",
    "Cutout",
    "FERMix",
    "LandmarkFERMix",
    "MixParams",
    "MixSpec",
    "Mixup",
    "build_mixer",
    "mix_labels",
    "one_hot",
    "pattern_probs",
    "region_box",
    "region_lambda",
]
