"""Batch mixing augmentations: FERMix (the method) and the Fig. 8 baselines, one interface."""

from __future__ import annotations

from typing import Any

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
)

MIXERS = {"fermix": FERMix, "cutout": Cutout, "cutmix": CutMix, "mixup": Mixup}


def build_mixer(name: str, **kwargs: Any) -> FERMix | Cutout | CutMix | Mixup | None:
    """Create a batch mixer by name: ``fermix``, ``cutout``, ``cutmix``, ``mixup`` (``none``: None).

    Raises:
        ValueError: for an unknown name or arguments the mixer does not take.
    """
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
    "MixParams",
    "Mixup",
    "build_mixer",
    "mix_labels",
    "one_hot",
    "pattern_probs",
    "region_box",
]
