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
    pixel_lambda,
    region_box,
)
from fermixnet.augment.landmarks import face_axes, fit_similarity, valid_landmarks
from fermixnet.framing import RAFDB_TEMPLATE

LAM_RULES: tuple[str, ...] = ("paper", "face_area")


def _axes(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates as broadcastable ``x (1, 1, W)`` and ``y (1, H, 1)``."""
    xs = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, width)
    ys = torch.arange(height, device=device, dtype=torch.float32).view(1, height, 1)
    return xs, ys


def _linear(cx: Tensor, cy: Tensor, c0: Tensor, height: int, width: int) -> Tensor:
    """``cx * x + cy * y + c0`` over every pixel, one (B,) coefficient each: (B, H, W).
    Separable in x and y, so no (B, H, W, 2) coordinate tensor is built."""
    xs, ys = _axes(height, width, cx.device)
    view = (-1, 1, 1)
    return cx.view(view) * xs + cy.view(view) * ys + c0.view(view)


def _similarity_maps(a: Tensor, b: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Where the similarity ``(a, b)`` (`fit_similarity`) takes every pixel: x and y, (B, H, W)."""
    a0, a1 = a[:, 0], a[:, 1]
    return (_linear(a0, -a1, b[:, 0], height, width),
            _linear(a1, a0, b[:, 1], height, width))


def landmark_masks(region: str, points: Tensor, height: int, width: int) -> Tensor:
    """(B, H, W) bool: the pixels of `region` (from the partner) in each face's own frame."""
    region_box(region, height, width)  # an unknown region raises the error naming them
    eye_mid, v, u = face_axes(points)
    nose = points[:, 2]
    upper = left = None
    if region != "left" and region != "right":  # (x - nose) . v < 0: before the nose line
        upper = _linear(v[:, 0], v[:, 1], -(nose * v).sum(1), height, width) < 0
    if region != "upper" and region != "lower":  # (x - eye_mid) . u < 0: left of the midline
        left = _linear(u[:, 0], u[:, 1], -(eye_mid * u).sum(1), height, width) < 0
    masks = {"upper": lambda: upper, "lower": lambda: ~upper, "left": lambda: left,
             "right": lambda: ~left, "upper_left": lambda: upper & left,
             "upper_right": lambda: upper & ~left}  # fmt: skip
    return masks[region]()


def warp_onto(partners: Tensor, partner_points: Tensor, points: Tensor) -> Tensor:
    """Partner images (R, C, H, W) warped by the similarity that takes their landmarks
    `partner_points` (R, 5, 2) onto `points` (R, 5, 2): (R, C, H, W), 0 outside a partner."""
    height, width = partners.shape[-2:]
    a, b = fit_similarity(points, partner_points)  # main-face pixel -> partner pixel
    src_x, src_y = _similarity_maps(a, b, height, width)  # (R, H, W) each
    # pixel centres -> grid_sample's [-1, 1] (align_corners=False)
    grid = torch.stack([(2 * src_x + 1) / width - 1, (2 * src_y + 1) / height - 1], -1)
    return F.grid_sample(partners, grid.to(partners.dtype), mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def face_box_masks(points: Tensor, height: int, width: int) -> Tensor:
    """(B, H, W) bool: each face's box, the square where its landmarks sit at the template."""
    template = torch.as_tensor(RAFDB_TEMPLATE, dtype=points.dtype, device=points.device)
    a, b = fit_similarity(points, template.expand_as(points))  # image pixel -> box fraction
    fx, fy = _similarity_maps(a, b, height, width)
    return (fx >= 0) & (fx <= 1) & (fy >= 0) & (fy <= 1)


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
        rows = (use & use[perm]).nonzero().squeeze(1)  # both faces have usable landmarks
        region_box(params.region, height, width)  # an unknown region fails here, named
        x_mix = super().apply(x, y, params)[0]  # fixed regions (Eqs. 1-4), replaced below
        mask = None
        if len(rows):
            mask = landmark_masks(params.region, pts[rows], height, width)  # (R, H, W)
            warped = warp_onto(x[perm[rows]], pts[perm[rows]], pts[rows])
            x_mix[rows] = torch.where(mask[:, None], warped, x[rows])
        return x_mix, mix_labels(y, perm, self._lam(params, rows, mask, pts, (height, width)))

    def _points(self, landmarks: Tensor | None, batch: int, device: torch.device) -> Tensor:
        if landmarks is None:
            return torch.full((batch, 5, 2), float("nan"), device=device)
        if landmarks.shape != (batch, 5, 2):
            raise ValueError(f"expected landmarks of shape ({batch}, 5, 2), got "
                             f"{tuple(landmarks.shape)}")
        return landmarks.to(device, torch.float32)

    def _lam(self, params: MixParams, rows: Tensor, mask: Tensor | None, points: Tensor,
             size: tuple[int, int]) -> float | Tensor:
        """Eq. 5's lambda: the paper's, or per row the main face's share of its face box
        (fallback rows: of the image)."""
        if self.lam_rule == "paper":
            return float(params.lam)  # `sample` sets `region_lambda(region)`, as FERMix does
        height, width = size
        exact = pixel_lambda(params.region, height, width)
        lam = torch.full((points.shape[0],), exact, device=points.device)
        if mask is not None:
            box = face_box_masks(points[rows], height, width)  # (R, H, W)
            area = box.sum((1, 2)).float()
            share = 1 - (mask & box).sum((1, 2)).float() / area.clamp(min=1)
            lam[rows] = torch.where(area > 0, share, torch.full_like(share, float(params.lam)))
        return lam

