"""Drawing primitives of the synthetic-face renderer: colours, curves and the face frame.

A `Frame` maps *face coordinates* (origin between the eyes' level and the nose, x to the
image-right, y down, one unit = half the face width of an average face) to canvas pixels with the
face's pose (rotation, scale, shift), so every part drawn through it rotates together.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import ImageDraw

from fermixnet.synth.faces import Face

Colour = tuple[int, int, int]


def shade(rgb: Colour, factor: float) -> Colour:
    """`rgb` darkened (factor < 1) or lightened (factor > 1)."""
    return tuple(int(min(255, max(0, c * factor))) for c in rgb)


def mix(a: Colour, b: Colour, t: float) -> Colour:
    """`a` blended towards `b` by `t` in [0, 1]."""
    return tuple(int(x * (1 - t) + y * t) for x, y in zip(a, b, strict=True))


def ellipse(
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    t0: float = 0.0,
    t1: float = 2 * math.pi,
    n: int = 20,
) -> np.ndarray:
    """(n, 2) points on the ellipse centred at (cx, cy) with radii (rx, ry), angles t0..t1."""
    t = np.linspace(t0, t1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def quad(x: np.ndarray, x0: float, y0: float, yc: float, x1: float, y1: float) -> np.ndarray:
    """Parabola-like curve through (x0, y0), (mid, yc), (x1, y1), sampled at `x`."""
    t = (x - x0) / (x1 - x0)
    return (1 - t) ** 2 * y0 + 2 * t * (1 - t) * (2 * yc - (y0 + y1) / 2) + t**2 * y1


class Frame:
    """Face coordinates -> canvas pixels, with the face's pose."""

    def __init__(self, draw: ImageDraw.ImageDraw, size: int, face: Face):
        pose = face.pose
        self.draw = draw
        self.unit = 0.38 * size * pose["scale"]
        self.cx = size * (0.5 + pose["dx"])
        self.cy = size * (0.45 + pose["dy"])
        angle = math.radians(pose["roll"])
        self.rot = np.array(
            [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
        )

    def map(self, pts: np.ndarray) -> np.ndarray:
        """(N, 2) face coordinates -> (N, 2) canvas pixels."""
        return pts @ self.rot.T * self.unit + (self.cx, self.cy)

    def poly(self, pts: np.ndarray, fill: Colour) -> None:
        self.draw.polygon([tuple(p) for p in self.map(pts)], fill=fill)

    def line(self, pts: np.ndarray, fill: Colour, width: float) -> None:
        w = max(1, round(width * self.unit))
        self.draw.line([tuple(p) for p in self.map(pts)], fill=fill, width=w, joint="curve")
