"""Cutout, CutMix and Mixup with FERMix's interface, for the comparison of Fig. 8.

Each exposes ``sample(batch_size, generator) -> MixParams`` and ``apply(x, y, params)``, so the
trainer treats every method alike (co-training included, as in Sec. 4.4).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from fermixnet.augment.fermix import MixParams, check_batch, mix_labels


def _beta(alpha: float, generator: torch.Generator | None) -> float:
    """Beta(alpha, alpha) draw that follows `generator` (torch.distributions cannot take one)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def _check_params(x: Tensor, params: MixParams) -> None:
    if params.perm.shape != (x.shape[0],):
        raise ValueError(
            f"permutation of shape {tuple(params.perm.shape)} does not match batch {x.shape[0]}"
        )


class Cutout:
    """Cutout (DeVries & Taylor, 2017): zero a random square per image; the label is unchanged.

    Zero is the mean pixel, since mixing runs on normalised images. The square's centre is uniform
    over the image and the square is clipped at the border, as in the original.

    Args:
        size_frac: side of the square as a fraction of the image side (0, 1].
    """

    def __init__(self, size_frac: float = 0.5):
        if not 0 < size_frac <= 1:
            raise ValueError(f"Cutout size_frac must be in (0, 1], got {size_frac}")
        self.size_frac = size_frac

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> MixParams:
        centres = torch.rand(batch_size, 2, generator=generator)  # (B, 2) as fractions (cy, cx)
        return MixParams(
            region="cutout", perm=torch.arange(batch_size), lam=1.0, boxes=centres
        )

    def apply(self, x: Tensor, y: Tensor, params: MixParams) -> tuple[Tensor, Tensor]:
        check_batch(x, y)
        _check_params(x, params)
        height, width = x.shape[-2:]
        side_h, side_w = self.size_frac * height, self.size_frac * width
        centres = params.boxes.to(x.device, torch.float32)
        rows = torch.arange(height, device=x.device).view(1, -1, 1) + 0.5
        cols = torch.arange(width, device=x.device).view(1, 1, -1) + 0.5
        cy = centres[:, 0].view(-1, 1, 1) * height
        cx = centres[:, 1].view(-1, 1, 1) * width
        inside = ((rows - cy).abs() <= side_h / 2) & ((cols - cx).abs() <= side_w / 2)  # (B, H, W)
        return x.masked_fill(inside.unsqueeze(1), 0.0), y.clone()

    def __call__(self, x, y, generator=None):
        return self.apply(x, y, self.sample(x.shape[0], generator))


class CutMix:
    """CutMix (Yun et al., 2019): paste a random box of the partner; lambda = kept area share.

    One box per batch (as timm does), area ``1 - lam0`` with ``lam0 ~ Beta(alpha, alpha)``;
    lambda is then corrected to the exact kept area after clipping.
    """

    def __init__(self, alpha: float = 1.0):
        if alpha <= 0:
            raise ValueError(f"CutMix alpha must be > 0, got {alpha}")
        self.alpha = alpha

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> MixParams:
        lam0 = _beta(self.alpha, generator)
        centre = torch.rand(2, generator=generator)
        cut = torch.tensor([(1 - lam0) ** 0.5] * 2)
        box = torch.cat([centre, cut]).view(1, 4)  # fractions (cy, cx, h, w)
        return MixParams(
            region="cutmix", perm=torch.randperm(batch_size, generator=generator), lam=lam0,
            boxes=box,
        )

    @staticmethod
    def pixel_box(params: MixParams, height: int, width: int) -> tuple[int, int, int, int]:
        cy, cx, fh, fw = params.boxes[0].tolist()
        y0 = int(max(round((cy - fh / 2) * height), 0))
        y1 = int(min(round((cy + fh / 2) * height), height))
        x0 = int(max(round((cx - fw / 2) * width), 0))
        x1 = int(min(round((cx + fw / 2) * width), width))
        return y0, y1, x0, x1

    def apply(self, x: Tensor, y: Tensor, params: MixParams) -> tuple[Tensor, Tensor]:
        check_batch(x, y)
        _check_params(x, params)
        height, width = x.shape[-2:]
        y0, y1, x0, x1 = self.pixel_box(params, height, width)
        perm = params.perm.to(x.device)
        x_mix = x.clone()
        x_mix[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
        return x_mix, mix_labels(y, perm, lam)

    def __call__(self, x, y, generator=None):
        return self.apply(x, y, self.sample(x.shape[0], generator))


class Mixup:
    """Mixup (Zhang et al., 2018): ``lam * x_A + (1 - lam) * x_B``, ``lam ~ Beta(alpha, alpha)``."""

    def __init__(self, alpha: float = 0.2):
        if alpha <= 0:
            raise ValueError(f"Mixup alpha must be > 0, got {alpha}")
        self.alpha = alpha

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> MixParams:
        return MixParams(
            region="mixup",
            perm=torch.randperm(batch_size, generator=generator),
            lam=_beta(self.alpha, generator),
        )

    def apply(self, x: Tensor, y: Tensor, params: MixParams) -> tuple[Tensor, Tensor]:
        check_batch(x, y)
        _check_params(x, params)
        perm = params.perm.to(x.device)
        lam = float(params.lam)
        return lam * x + (1 - lam) * x[perm], mix_labels(y, perm, lam)

    def __call__(self, x, y, generator=None):
        return self.apply(x, y, self.sample(x.shape[0], generator))
