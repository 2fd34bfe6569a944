"""Landmark-placed FERMix: the six regions of Eqs. 1-3 drawn in each face's own frame.

FERMix (Sec. 3.2.1) cuts every image along fixed lines (H/2, W/2), which the paper justifies by
face alignment: "the human eyes are typically positioned in the upper part of the image, while
the mouth is located in the lower part". Turned, tilted or badly framed faces break that premise:
the upper half may hold one eye and half the mouth. This mixer keeps the paper's regions, their
probabilities and its label rule, and places them with each face's five landmarks
(:mod:`fermixnet.augment.landmarks`), as face-aware mixing does in FaceMixup (arXiv 2405.20259),
and as saliency guides the pasted box in SaliencyMix (Uddin et al., ICLR 2021) and Attentive
CutMix (Walawalkar et al., ICASSP 2020).

Definition, per main image A (landmarks ``p``) and partner B (landmarks ``q``):

- Face frame of A: ``v`` the unit vector from the eyes' midpoint to the mouth's midpoint, ``u``
  perpendicular to it, towards the image-right eye.
- Eq. 1: ``upper`` is every pixel before the *nose line* (through the nose tip, across ``v``):
  ``(x - nose) . v < 0``; ``lower`` the rest.
- Eq. 2: ``left`` is every pixel on the image-left side of the *midline* through the eyes'
  midpoint and the mouth's midpoint: ``(x - eye_mid) . u < 0``; ``right`` the rest. As in
  :mod:`fermixnet.augment.fermix`, ``left`` is the subject's right side of an upright face.
- Eq. 3: the quarters around the nose: ``upper_left = upper & left``, ``upper_right`` likewise.
- Eq. 4: B is first warped onto A's landmarks by the least-squares similarity ``q ≈ s R p + t``
  (``F.grid_sample``, bilinear, 0 outside B), so A's region receives B's *same* facial part
  (B's eyes for ``upper``), then pasted where the region's mask is 1.

Decisions the paper leaves open (it has no landmarks), taken once here:
- Regions run to the image border, as the fixed ones do: a half-plane, not a face-sized patch.
- A pair uses landmarks only when both A and B have usable ones (`valid_landmarks`: finite,
  not degenerate, not mirrored); otherwise it falls back to FERMix's fixed region, unwarped
  (NaN landmarks mark samples whose landmarks are only the data set's template).
- Eq. 5's lambda: ``lam_rule="paper"`` (default) keeps FERMix's: the sampled `region_lambda`
  (0.5 for a half, 0.75 for a quarter); ``lam_rule="face_area"`` uses A's share of its *face
  box* (the square in which the landmarks sit at :data:`fermixnet.framing.RAFDB_TEMPLATE`):
  ``1 - |mask ∩ box| / |box|`` counted in pixels; fallback rows then use the image's pixel share.
- One region type per call and one partner permutation, drawn exactly as `FERMix.sample` draws
  them, so a seed gives the same region sequence as FERMix.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from fermixnet.augment.fermix import (
    FERMix,
    MixParams,
    check_batch,
    mix_labels,
    region_box,
    region_lambda,
)
from fermixnet.augment.landmarks import apply_similarity, face_axes, fit_similarity, valid_landmarks
from fermixnet.framing import RAFDB_TEMPLATE

LAM_RULES: tuple[str, ...] = ("paper", "face_area")


def pixel_grid(height: int, width: int, device: torch.device | None = None) -> Tensor:
    """(H, W, 2) pixel-centre coordinates ``(x, y)`` of an image."""
    ys = torch.arange(height, device=device, dtype=torch.float32)
    xs = torch.arange(width, device=device, dtype=torch.float32)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1)


def landmark_masks(region: str, points: Tensor, height: int, width: int) -> Tensor:
    """(B, H, W) bool: the pixels of `region` (from the partner) in each face's own frame."""
    grid = pixel_grid(height, width, points.device)[None]  # (1, H, W, 2)
    eye_mid, v, u = face_axes(points)
    along = ((grid - points[:, 2, None, None]) * v[:, None, None]).sum(-1)  # (B, H, W)
    across = ((grid - eye_mid[:, None, None]) * u[:, None, None]).sum(-1)
    upper, left = along < 0, across < 0
    masks = {"upper": upper, "lower": ~upper, "left": left, "right": ~left,
             "upper_left": upper & left, "upper_right": upper & ~left}  # fmt: skip
    if region not in masks:
        region_box(region, height, width)  # raises the error naming the regions
    return masks[region]


def fixed_mask(region: str, height: int, width: int, device: torch.device | None = None) -> Tensor:
    """(H, W) bool mask of FERMix's fixed region (Eqs. 1-3)."""
    y0, y1, x0, x1 = region_box(region, height, width)
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[y0:y1, x0:x1] = True
    return mask


def warp_partners(x: Tensor, perm: Tensor, points: Tensor) -> Tensor:
    """Each partner ``x[perm[i]]`` warped so its landmarks land on ``points[i]``: (B, C, H, W)."""
    height, width = x.shape[-2:]
    a, b = fit_similarity(points, points[perm])  # target pixel -> partner pixel
    src = apply_similarity(a, b, pixel_grid(height, width, x.device)[None])  # (B, H, W, 2)
    size = src.new_tensor([width, height])
    grid = (2 * src + 1) / size - 1  # pixel centres -> grid_sample's [-1, 1] (align_corners=False)
    return F.grid_sample(x[perm], grid.to(x.dtype), mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def face_box_masks(points: Tensor, height: int, width: int) -> Tensor:
    """(B, H, W) bool: each face's box, the square where its landmarks sit at the template."""
    template = torch.as_tensor(RAFDB_TEMPLATE, dtype=points.dtype, device=points.device)
    a, b = fit_similarity(points, template.expand_as(points))  # image pixel -> box fraction
    frac = apply_similarity(a, b, pixel_grid(height, width, points.device)[None])
    return ((frac >= 0) & (frac <= 1)).all(-1)


class LandmarkFERMix(FERMix):
    """FERMix with regions placed by each face's landmarks, the partner warped onto the main
    face (module docstring); samples without usable landmarks get FERMix's fixed regions.

    Args:
        probs: probability of each region (FERMix's names); the paper's 20/20/20/20/10/10 %.
        lam_rule: ``paper`` (Eq. 5's 0.5 / 0.75) or ``face_area`` (main face's share of its box).

    Example:
        >>> mix = LandmarkFERMix()
        >>> params = mix.sample(x.shape[0], generator=g)
        >>> x_mix, y_mix = mix.apply(x, y, params, landmarks=pts)  # pts (B, 5, 2), NaN = none
    """

    uses_landmarks = True
    """The training step hands this mixer the batch's landmarks."""

    def __init__(self, probs: Mapping[str, float] | None = None, lam_rule: str = "paper"):
        if lam_rule not in LAM_RULES:
            raise ValueError(f"lam_rule must be one of {', '.join(LAM_RULES)}, got {lam_rule!r}")
        super().__init__(probs, exact_lambda=False)
        self.lam_rule = lam_rule

    def __repr__(self) -> str:
        active = {r: p for r, p in self.probs.items() if p > 0}
        return f"LandmarkFERMix(probs={active}, lam_rule={self.lam_rule!r})"

    def apply(
        self, x: Tensor, y: Tensor, params: MixParams, landmarks: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Eqs. 4-5 with landmark-placed regions.

        Args:
            x: images (B, C, H, W), any device and float dtype.
            y: label probabilities (B, K).
            params: from :meth:`sample`, or built by hand.
            landmarks: (B, 5, 2) in `x`'s pixels (``augment.landmarks`` order), NaN rows for
                samples without face-specific landmarks; None: FERMix's fixed regions for all.

        Returns:
            ``(x_mix, y_mix)``; ``x`` and ``y`` are not modified.
        """
        check_batch(x, y)
        batch, _, height, width = x.shape
        if params.perm.shape != (batch,):
            raise ValueError(f"permutation of shape {tuple(params.perm.shape)} does not match "
                             f"batch {batch}")
        perm = params.perm.to(x.device)
        pts = self._points(landmarks, batch, x.device)
        use = valid_landmarks(pts)
        use = use & use[perm]  # (B,) both faces must have usable landmarks
        safe = torch.where(use[:, None, None], pts, _unit_face(height, width, x.device))
        fixed = fixed_mask(params.region, height, width, x.device)
        mask = torch.where(use[:, None, None], landmark_masks(params.region, safe, height, width),
                           fixed)  # (B, H, W)
        partner = x[perm]
        if bool(use.any()):
            partner = torch.where(use[:, None, None, None], warp_partners(x, perm, safe), partner)
        x_mix = torch.where(mask[:, None], partner, x)
        return x_mix, mix_labels(y, perm, self._lam(params, mask, use, safe))

    def _points(self, landmarks: Tensor | None, batch: int, device: torch.device) -> Tensor:
        if landmarks is None:
            return torch.full((batch, 5, 2), float("nan"), device=device)
        if landmarks.shape != (batch, 5, 2):
            raise ValueError(f"expected landmarks of shape ({batch}, 5, 2), got "
                             f"{tuple(landmarks.shape)}")
        return landmarks.to(device, torch.float32)

    def _lam(self, params: MixParams, mask: Tensor, use: Tensor, points: Tensor) -> float | Tensor:
        if self.lam_rule == "paper":
            return float(params.lam)  # `sample` sets `region_lambda(region)`, as FERMix does
        height, width = mask.shape[-2:]
        box = face_box_masks(points, height, width) & use[:, None, None]
        box = box | ~use[:, None, None]  # fallback rows: the whole image (exact pixel share)
        area = box.sum((1, 2)).float()
        pasted = (mask & box).sum((1, 2)).float()
        lam = 1 - pasted / area.clamp(min=1)
        return torch.where(area > 0, lam, torch.full_like(lam, region_lambda(params.region)))


def _unit_face(height: int, width: int, device: torch.device) -> Tensor:
    """(5, 2) template landmarks in pixels: a harmless stand-in for rows that fall back."""
    template = torch.as_tensor(RAFDB_TEMPLATE, dtype=torch.float32, device=device)
    return template * template.new_tensor([width, height])
