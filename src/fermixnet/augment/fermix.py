"""FERMix: the facial mixing augmentation of FERMixNet (paper, Sec. 3.2.1, Eqs. 1-5).

A batch is mixed with a shuffled copy of itself: one region of each (main) image is replaced by the
same region of its partner, and the label is mixed by the main image's share of the area.

Decisions the paper leaves open, taken once here:
- One region type per call (per iteration), as in the paper (Fig. 2, Sec. 3.2.1); partners come
  from one random permutation of the batch (Fig. 4), so an image may be paired with itself.
- Region names say which part comes *from the partner* (the mask M of Eq. 4 is 0 there):
  ``upper``/``lower`` (Eq. 1), ``left``/``right`` (Eq. 2), ``upper_left``/``upper_right`` (Eq. 3).
  ``left`` is the left half of the image array (column 0 onward), i.e. the subject's right side.
- Halves of an odd size: the first part gets ``size // 2`` rows/columns (Eq. 1 with integer H/2).
- lambda is the paper's fixed 0.5 (halves) or 0.75 (quarters); with ``exact_lambda=True`` it is the
  main image's exact pixel share, which differs only for odd sizes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

REGIONS: tuple[str, ...] = ("upper", "lower", "left", "right", "upper_left", "upper_right")

# Sec. 3.2.1 / Table 3: horizontal 40 %, vertical 40 %, corner 20 %, split evenly inside a pattern.
DEFAULT_PROBS: Mapping[str, float] = {
    "upper": 0.2,
    "lower": 0.2,
    "left": 0.2,
    "right": 0.2,
    "upper_left": 0.1,
    "upper_right": 0.1,
}

# The three patterns of Fig. 3, for configs that give per-pattern probabilities (Tables 3 and 4).
PATTERNS: Mapping[str, tuple[str, ...]] = {
    "horizontal": ("upper", "lower"),
    "vertical": ("left", "right"),
    "corner": ("upper_left", "upper_right"),
}


@dataclass(frozen=True)
class MixParams:
    """Random parameters of one batch mix, sampled apart from their application.

    Attributes:
        region: name of the region (or method) applied.
        perm: (B,) long tensor; image ``i`` is mixed with image ``perm[i]``.
        lam: weight of the main image's label (Eq. 5); a float, or a (B,) tensor.
        boxes: box parameters of the box baselines, as fractions of the image size
            (Cutout: (B, 2) centres; CutMix: (1, 4) centre and size); None for FERMix.
    """

    region: str
    perm: Tensor
    lam: float | Tensor
    boxes: Tensor | None = None


def region_box(region: str, height: int, width: int) -> tuple[int, int, int, int]:
    """Rows and columns ``(y0, y1, x0, x1)`` of the region taken from the partner (Eqs. 1-3)."""
    h2, w2 = height // 2, width // 2
    boxes = {
        "upper": (0, h2, 0, width),
        "lower": (h2, height, 0, width),
        "left": (0, height, 0, w2),
        "right": (0, height, w2, width),
        "upper_left": (0, h2, 0, w2),
        "upper_right": (0, h2, w2, width),
    }
    if region not in boxes:
        raise ValueError(f"unknown FERMix region {region!r}; expected one of {', '.join(REGIONS)}")
    return boxes[region]


def region_lambda(region: str) -> float:
    """Eq. 5's lambda of the main image for `region` at the paper's fixed value: 0.5 for a half
    (Eqs. 1-2), 0.75 for a quarter (Eq. 3)."""
    return 0.75 if region in PATTERNS["corner"] else 0.5


def pixel_lambda(region: str, height: int, width: int) -> float:
    """The main image's exact pixel share for `region` at `height` x `width` (Eq. 5's lambda
    with ``exact_lambda``; differs from `region_lambda` only for odd sizes)."""
    y0, y1, x0, x1 = region_box(region, height, width)
    return 1.0 - (y1 - y0) * (x1 - x0) / (height * width)


def check_probs(probs: Mapping[str, float]) -> dict[str, float]:
    """Validate region probabilities (names in `REGIONS`, finite, >= 0, summing to 1).

    Returns:
        The probability of every region in `REGIONS` (missing ones are 0).

    Raises:
        ValueError: naming the offending regions or values.
    """
    unknown = sorted(set(probs) - set(REGIONS))
    if unknown:
        raise ValueError(
            f"unknown FERMix region(s) {unknown}; expected names among {', '.join(REGIONS)}"
        )
    if any(p < 0 or not math.isfinite(p) for p in probs.values()):
        raise ValueError(f"FERMix region probabilities must be finite and >= 0, got {dict(probs)}")
    total = sum(probs.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(
            f"FERMix region probabilities must sum to 1, got {total:.6g}: {dict(probs)}")
    return {r: float(probs.get(r, 0.0)) for r in REGIONS}


def pattern_probs(horizontal: float, vertical: float, corner: float) -> dict[str, float]:
    """Region probabilities from per-pattern probabilities, split evenly (Table 3's settings)."""
    per_pattern = {"horizontal": horizontal, "vertical": vertical, "corner": corner}
    return {r: p / 2 for name, p in per_pattern.items() for r in PATTERNS[name]}


def check_batch(x: Tensor, y: Tensor) -> None:
    """Validate an image batch (B, C, H, W) and soft labels (B, K); raise ValueError otherwise."""
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got shape {tuple(x.shape)}")
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"expected labels of shape (B, K) = ({x.shape[0]}, K) as probabilities, "
            f"got shape {tuple(y.shape)}; convert class indices with fermixnet.augment.one_hot"
        )
    if not y.is_floating_point():
        raise ValueError(f"expected float label probabilities, got dtype {y.dtype}")


def one_hot(labels: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Class indices (B,) to probabilities (B, K)."""
    if labels.ndim != 1:
        raise ValueError(f"expected class indices of shape (B,), got shape {tuple(labels.shape)}")
    return torch.nn.functional.one_hot(labels.long(), num_classes).to(dtype)


def mix_labels(y: Tensor, perm: Tensor, lam: float | Tensor) -> Tensor:
    """Eq. 5: ``lam * y_A + (1 - lam) * y_B`` with ``y_B = y[perm]``."""
    if isinstance(lam, Tensor):
        lam = lam.to(y.device, y.dtype).view(-1, 1)
    return lam * y + (1 - lam) * y[perm.to(y.device)]


class FERMix:
    """FERMix (Sec. 3.2.1): replace one facial region with the same region of a shuffled partner.

    Args:
        probs: probability of each region in ``REGIONS`` (missing ones are 0); must sum to 1.
            Defaults to the paper's 20/20/20/20/10/10 % (Sec. 3.2.1).
        exact_lambda: use the exact pixel share instead of the paper's 0.5 / 0.75.

    Example:
        >>> mix = FERMix()
        >>> params = mix.sample(x.shape[0], generator=g)
        >>> x_mix, y_mix = mix.apply(x, y, params)
    """

    def __init__(self, probs: Mapping[str, float] | None = None, exact_lambda: bool = False):
        self.probs = check_probs(DEFAULT_PROBS if probs is None else probs)
        self.exact_lambda = exact_lambda
        self._weights = torch.tensor([self.probs[r] for r in REGIONS], dtype=torch.float64)

    def __repr__(self) -> str:
        active = {r: p for r, p in self.probs.items() if p > 0}
        return f"FERMix(probs={active}, exact_lambda={self.exact_lambda})"

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> MixParams:
        """Draw one region type and a partner permutation (on the CPU)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        idx = int(torch.multinomial(self._weights, 1, generator=generator))
        perm = torch.randperm(batch_size, generator=generator)
        region = REGIONS[idx]
        return MixParams(region=region, perm=perm, lam=region_lambda(region))

    def lam_for(self, params: MixParams, height: int, width: int) -> float:
        """Eq. 5's lambda for this region and image size."""
        if not self.exact_lambda:
            return float(params.lam)
        return pixel_lambda(params.region, height, width)

    def apply(self, x: Tensor, y: Tensor, params: MixParams) -> tuple[Tensor, Tensor]:
        """Eqs. 4-5: the mixed batch and its soft labels.

        Args:
            x: images (B, C, H, W), any device and float dtype.
            y: label probabilities (B, K).
            params: from :meth:`sample`, or built by hand.

        Returns:
            ``(x_mix, y_mix)``; ``x`` and ``y`` are not modified.
        """
        check_batch(x, y)
        if params.perm.shape != (x.shape[0],):
            raise ValueError(
                f"permutation of shape {tuple(params.perm.shape)} does not match batch {x.shape[0]}"
            )
        height, width = x.shape[-2:]
        y0, y1, x0, x1 = region_box(params.region, height, width)
        perm = params.perm.to(x.device)
        x_mix = x.clone()  # (B, C, H, W); only the region is gathered from the partners
        x_mix[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
        return x_mix, mix_labels(y, perm, self.lam_for(params, height, width))

    def __call__(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        return self.apply(x, y, self.sample(x.shape[0], generator=generator))
