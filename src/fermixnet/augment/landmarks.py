"""Five facial landmarks as they travel with training images: order, flips, crops, validity.

Order everywhere in fermixnet (``inference/align.py``): eye on the image's left (the subject's
right eye), eye on the image's right, nose tip, mouth corner on the image's left, mouth corner on
the image's right. Points are ``(x, y)`` in pixels of the image they belong to, pixel centres at
integer indices (x to the right, y down). An array of them has shape ``(..., 5, 2)``; a sample
without face-specific landmarks carries NaN.

A horizontal flip mirrors x (``x -> W - 1 - x``) *and* swaps the left/right points, so that index 0
stays the eye on the image's left; a crop shifts them. Both work on NumPy arrays and tensors.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

NAMES: tuple[str, ...] = ("eye_l", "eye_r", "nose", "mouth_l", "mouth_r")
FLIP_ORDER: tuple[int, ...] = (1, 0, 2, 4, 3)
"""Index of each point after a horizontal flip (left and right swap, the nose stays)."""
MIN_SPREAD = 1.0
"""Smallest eye distance and eye-to-mouth distance (pixels) of a usable landmark set."""


def flip_points(points: np.ndarray | Tensor, width: int) -> np.ndarray | Tensor:
    """Landmarks `(..., 5, 2)` of an image of `width` pixels after a horizontal flip."""
    order = list(FLIP_ORDER)
    flipped = points[..., order, :].clone() if isinstance(points, Tensor) else (
        np.array(points[..., order, :], dtype=np.float64))
    flipped[..., 0] = (width - 1) - flipped[..., 0]
    return flipped


def shift_points(points: np.ndarray | Tensor, dx: float, dy: float) -> np.ndarray | Tensor:
    """Landmarks moved by `(dx, dy)` pixels (a crop at ``(-dx, -dy)`` of a padded image)."""
    offset = (points.new_tensor([dx, dy]) if isinstance(points, Tensor)
              else np.array([dx, dy], dtype=np.float64))
    return points + offset


def landmark_problem(points: np.ndarray | None, height: int, width: int) -> str:
    """Why five landmarks `(5, 2)` of a `height` x `width` image cannot be used ("" if they can).

    Refused: not five finite points, a point outside the image, eyes (or eye and mouth midpoints)
    closer than `MIN_SPREAD` pixels, and a mirrored order (the image-left eye right of the face's
    midline), which a similarity transform cannot fit.
    """
    if points is None:
        return "no landmarks"
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (5, 2):
        return f"expected 5 (x, y) points, got shape {pts.shape}"
    if not np.isfinite(pts).all():
        return "a landmark is not a finite number"
    outside = (pts[:, 0] < -0.5) | (pts[:, 0] > width - 0.5) | (pts[:, 1] < -0.5) | (
        pts[:, 1] > height - 0.5)
    if outside.any():
        name = NAMES[int(np.argmax(outside))]
        x, y = pts[int(np.argmax(outside))]
        return f"landmark {name} ({x:.1f}, {y:.1f}) lies outside the {width}x{height} image"
    ok = valid_landmarks(torch.from_numpy(pts[None]))[0]
    return "" if bool(ok) else "degenerate landmarks (eyes on one point, or mirrored order)"


def face_axes(points: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The face's own frame from landmarks `(B, 5, 2)`.

    Returns:
        ``(eye_mid (B, 2), v (B, 2), u (B, 2))``: the eyes' midpoint, the unit vector from it
        towards the mouth's midpoint (down the face), and the unit vector across the face
        towards the image-right eye of an upright face (``v`` turned by -90 degrees).
    """
    eye_mid = (points[:, 0] + points[:, 1]) / 2
    mouth_mid = (points[:, 3] + points[:, 4]) / 2
    down = mouth_mid - eye_mid
    v = down / down.norm(dim=1, keepdim=True).clamp(min=1e-12)
    u = torch.stack([v[:, 1], -v[:, 0]], dim=1)
    return eye_mid, v, u


def valid_landmarks(points: Tensor, min_spread: float = MIN_SPREAD) -> Tensor:
    """(B,) bool: rows of `points` `(B, 5, 2)` a face frame can be built from.

    Finite, eyes at least `min_spread` pixels apart, eye and mouth midpoints too, and the
    image-left eye on the image-left side of the midline (not a mirrored order).
    """
    finite = torch.isfinite(points).flatten(1).all(1)
    safe = torch.where(finite[:, None, None], points, torch.zeros_like(points))
    eye_mid, _, u = face_axes(safe)
    mouth_mid = (safe[:, 3] + safe[:, 4]) / 2
    eyes = (safe[:, 1] - safe[:, 0]).norm(dim=1)
    length = (mouth_mid - eye_mid).norm(dim=1)
    upright = ((safe[:, 0] - eye_mid) * u).sum(1) < 0
    return finite & (eyes >= min_spread) & (length >= min_spread) & upright


def fit_similarity(src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
    """Least-squares similarity (rotation, uniform scale, shift; no reflection) per row.

    Points are read as complex numbers ``z = x + iy``; the fit ``dst ≈ a * src + b`` has the
    closed form ``a = Σ (w - w̄) conj(z - z̄) / Σ |z - z̄|²``, ``b = w̄ - a z̄`` (Umeyama 1991 in 2-D).

    Args:
        src: `(B, N, 2)` points.
        dst: `(B, N, 2)` points.

    Returns:
        ``(a (B, 2), b (B, 2))``: ``a = (cos, sin) * scale`` and the shift, so that
        ``x' = a0 x - a1 y + b0`` and ``y' = a1 x + a0 y + b1``.
    """
    zc = src - src.mean(1, keepdim=True)
    wc = dst - dst.mean(1, keepdim=True)
    den = (zc**2).sum((1, 2)).clamp(min=1e-12)
    a0 = (wc[..., 0] * zc[..., 0] + wc[..., 1] * zc[..., 1]).sum(1) / den
    a1 = (wc[..., 1] * zc[..., 0] - wc[..., 0] * zc[..., 1]).sum(1) / den
    a = torch.stack([a0, a1], 1)
    b = dst.mean(1) - apply_similarity(a, torch.zeros_like(a), src.mean(1, keepdim=True))[:, 0]
    return a, b


def apply_similarity(a: Tensor, b: Tensor, points: Tensor) -> Tensor:
    """Map `points` `(B, ..., 2)` by the similarity ``(a, b)`` of `fit_similarity`."""
    shape = (a.shape[0],) + (1,) * (points.ndim - 2)
    a0, a1 = a[:, 0].view(shape), a[:, 1].view(shape)
    x, y = points[..., 0], points[..., 1]
    return torch.stack([a0 * x - a1 * y + b[:, 0].view(shape),
                        a1 * x + a0 * y + b[:, 1].view(shape)], -1)


def rotate_about(points: np.ndarray, degrees: float, centre: tuple[float, float]) -> np.ndarray:
    """`points` `(N, 2)` turned by `degrees` (clockwise on screen, y down) about `centre`."""
    t = math.radians(degrees)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    c = np.asarray(centre, dtype=np.float64)
    return (np.asarray(points, dtype=np.float64) - c) @ rot.T + c
