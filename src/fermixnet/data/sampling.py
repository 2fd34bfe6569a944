"""Class balancing for long-tailed sets such as AffectNet (Sec. 4.2: "down sampling").

`class_balanced_downsample` keeps at most `max_per_class` samples of each class (default: as many
as the smallest class has), chosen with a seeded generator; `balanced_sampler` instead draws with
replacement, weighting each sample by the inverse of its class frequency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from fermixnet.data.base import Sample


def class_balanced_downsample(
    samples: Sequence[Sample] | Sequence[int] | np.ndarray,
    seed: int = 0,
    max_per_class: int | None = None,
) -> list[int]:
    """Indices (sorted) of a class-balanced subset.

    Args:
        samples: samples or their labels.
        seed: seed of the choice, so a recipe gives the same subset every time.
        max_per_class: cap per class; default the count of the smallest non-empty class.

    Raises:
        ValueError: `max_per_class` below 1.
    """
    labels = np.asarray([s.label if isinstance(s, Sample) else int(s) for s in samples])
    if max_per_class is not None and max_per_class < 1:
        raise ValueError(f"max_per_class must be at least 1, got {max_per_class}")
    classes, counts = np.unique(labels, return_counts=True)
    smallest = int(counts.min()) if counts.size else 0
    cap = int(max_per_class) if max_per_class is not None else smallest
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in classes:
        members = np.flatnonzero(labels == label)
        if len(members) > cap:
            members = rng.choice(members, size=cap, replace=False)
        keep.extend(int(i) for i in members)
    return sorted(keep)


def class_weights(labels: Sequence[int] | np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse class frequency per class, normalised to mean 1 over present classes (float32)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    present = counts > 0
    weights = weights / weights[present].mean() if present.any() else weights
    return torch.as_tensor(weights, dtype=torch.float32)


def balanced_sampler(
    labels: Sequence[int] | np.ndarray,
    num_samples: int | None = None,
    seed: int = 0,
) -> WeightedRandomSampler:
    """A sampler that draws every class equally often in expectation (with replacement).

    Args:
        labels: label of each sample.
        num_samples: draws per epoch (default: the number of samples).
        seed: seed of the sampler's generator.
    """
    labels = np.asarray(labels, dtype=np.int64)
    per_class = class_weights(labels, int(labels.max(initial=0)) + 1)
    weights = per_class[torch.as_tensor(labels)].double()
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(
        weights, num_samples or len(labels), replacement=True, generator=generator
    )
