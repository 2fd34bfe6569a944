"""Drawings of the occluding objects, in a face frame built from landmarks.

Coordinates: origin at the midpoint of the eyes, x along the eye line (to the image-right), y
perpendicular to it (down), one unit = the distance between the eye centres. The mouth is at
``(0, lm.mouth)`` (about 1.0-1.2). Each drawer paints an RGBA layer (alpha 0 = untouched) so
that shapes, sizes, positions and textures vary per image and follow the face, not the fixed
half/quarter boxes of FERMix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from fermixnet.synth.faces import HAIR_COLOURS, SKIN_TONES

Colour = tuple[int, int, int, int]


@dataclass(frozen=True)
class Landmarks:
    """Eye centres and mouth centre in pixels of the image being occluded."""

    eye_l: tuple[float, float]
    eye_r: tuple[float, float]
    mouth: tuple[float, float]


class FaceFrame:
    """Face-frame coordinates -> canvas pixels (see the module docstring)."""

    def __init__(self, draw: ImageDraw.ImageDraw, lm: Landmarks, scale: float):
        el, er = np.array(lm.eye_l) * scale, np.array(lm.eye_r) * scale
        self.draw = draw
        self.origin = (el + er) / 2
        self.d = float(np.linalg.norm(er - el)) or 1.0
        self.u = (er - el) / self.d
        self.v = np.array([-self.u[1], self.u[0]])
        self.mouth = float((np.array(lm.mouth) * scale - self.origin) @ self.v / self.d)

    def map(self, pts: np.ndarray) -> list[tuple[float, float]]:
        pts = np.asarray(pts, dtype=float)
        xy = self.origin + self.d * (pts[:, :1] * self.u + pts[:, 1:2] * self.v)
        return [tuple(p) for p in xy]

    def poly(self, pts: np.ndarray, fill: Colour) -> None:
        self.draw.polygon(self.map(pts), fill=fill)

    def line(self, pts: np.ndarray, fill: Colour, width: float) -> None:
        self.draw.line(self.map(pts), fill=fill, width=max(1, round(width * self.d)), joint="curve")


def ellipse(
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    n: int = 24,
    t0: float = 0.0,
    t1: float = 2 * math.pi,
) -> np.ndarray:
    t = np.linspace(t0, t1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _rgba(rgb: tuple[int, ...], alpha: int = 255) -> Colour:
    return (int(rgb[0]), int(rgb[1]), int(rgb[2]), alpha)


def _random_colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> Colour:
    return _rgba(tuple(rng.integers(lo, hi, size=3)))


def _shade(c: Colour, k: float) -> Colour:
    return (*(int(min(255, max(0, x * k))) for x in c[:3]), c[3])


def _skin(rng: np.random.Generator) -> Colour:
    return _rgba(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))])


# ---------------------------------------------------------------- upper face
def sunglasses(f: FaceFrame, rng: np.random.Generator, side: int) -> None:
    """Two dark lenses over the eyes, a bridge and the temple arms."""
    rx, ry = rng.uniform(0.42, 0.52), rng.uniform(0.28, 0.38)
    dy = rng.uniform(-0.06, 0.08)
    lens = _rgba(rng.integers(0, 70, size=3), int(rng.integers(225, 256)))
    frame = _random_colour(rng, 0, 200)
    square = rng.random() < 0.4
    for sx in (-0.5, 0.5):
        cx = sx * rng.uniform(0.95, 1.1)
        if square:
            pts = np.array(
                [
                    [cx - rx, dy - ry],
                    [cx + rx, dy - ry],
                    [cx + rx * 0.9, dy + ry],
                    [cx - rx * 0.9, dy + ry],
                ]
            )
        else:
            pts = ellipse(cx, dy + ry * 0.1, rx, ry)
            pts[:, 1] = np.maximum(pts[:, 1], dy - ry * 0.75)  # flat top of aviator lenses
        f.poly(pts, lens)
        f.line(np.vstack([pts, pts[:1]]), frame, 0.035)
        f.line(
            np.array([[cx - rx * 0.5, dy - ry * 0.4], [cx - rx * 0.1, dy + ry * 0.3]]),
            (200, 200, 210, 160),
            0.03,
        )
    f.line(np.array([[-0.5 + rx, dy - 0.03], [0, dy - 0.08], [0.5 - rx, dy - 0.03]]), frame, 0.04)
    for sx in (-1, 1):
        f.line(np.array([[sx * (0.5 + rx), dy - ry * 0.4], [sx * 1.45, dy - 0.05]]), frame, 0.04)


def hat(f: FaceFrame, rng: np.random.Generator, side: int) -> None:
    """A cap or hat whose brim comes down over the forehead, brows and part of the eyes."""
    edge = rng.uniform(-0.3, 0.05)
    tilt = rng.uniform(-0.15, 0.15)
    colour = _random_colour(rng, 20, 230)
    x = np.linspace(-1.6, 1.6, 17)
    brim = edge + tilt * x + rng.uniform(0.05, 0.18) * (1 - (x / 1.6) ** 2)
    top = np.array([[1.6, -4.0], [-1.6, -4.0]])
    f.poly(np.concatenate([np.stack([x, brim], 1), top]), colour)
    f.poly(
        np.concatenate([np.stack([x, brim], 1), np.stack([x, brim + 0.15], 1)[::-1]]),
        (0, 0, 0, 110),
    )  # the brim's shadow
    for k in range(1, 4):  # crown seams
        f.line(
            np.array([[-1.4 + 0.7 * k, brim[4 * k] - 0.05], [-1.2 + 0.6 * k, -3.0]]),
            _shade(colour, 0.7),
            0.03,
        )


# ---------------------------------------------------------------- lower face
def mask(f: FaceFrame, rng: np.random.Generator, side: int) -> None:
    """A surgical mask from the nose bridge to under the chin, pleats and ear loops."""
    top, bottom = rng.uniform(0.28, 0.5), f.mouth + rng.uniform(0.5, 0.75)
    half = rng.uniform(1.05, 1.3)
    colour = _rgba(
        [(150, 200, 230), (240, 240, 240), (30, 30, 35), (230, 170, 190), (120, 160, 120)][
            int(rng.integers(5))
        ]
    )
    x = np.linspace(-half, half, 13)
    up = top + 0.12 * (x / half) ** 2
    low = bottom - 0.25 * (x / half) ** 2
    f.poly(np.concatenate([np.stack([x, up], 1), np.stack([x, low], 1)[::-1]]), colour)
    for k in (0.3, 0.5, 0.7):  # pleats
        f.line(np.stack([x * 0.95, up + k * (low - up)], 1), _shade(colour, 0.8), 0.025)
    for sx in (-1, 1):
        f.line(np.array([[sx * half, up[0] + 0.05], [sx * 1.45, 0.1]]), (230, 230, 230, 255), 0.025)
        f.line(
            np.array([[sx * half, low[0] - 0.1], [sx * 1.45, 0.35]]), (230, 230, 230, 255), 0.025
        )


def scarf(f: FaceFrame, rng: np.random.Generator, side: int) -> None:
    """A scarf pulled up over the mouth (and sometimes the nose), striped, to the image bottom."""
    top = f.mouth + rng.uniform(-0.45, 0.05)
    base, stripe = _random_colour(rng, 20, 235), _random_colour(rng, 20, 235)
    x = np.linspace(-2.0, 2.0, 21)
    wave = top + 0.05 * np.sin(x * rng.uniform(3, 7) + rng.uniform(0, 6)) + 0.1 * (x / 2) ** 2
    f.poly(np.concatenate([np.stack([x, wave], 1), [[2.0, 6.0], [-2.0, 6.0]]]), base)
    gap = rng.uniform(0.12, 0.25)
    for k in range(1, 12):
        f.line(np.stack([x, wave + k * gap], 1), stripe, gap * 0.4)


def _hand(
    f: FaceFrame, rng: np.random.Generator, cx: float, cy: float, size: float, angle: float
) -> None:
    """A palm with four fingers and a thumb, rotated by `angle` (0: fingers point up)."""
    skin = _skin(rng)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])

    def put(pts: np.ndarray) -> np.ndarray:
        return pts * (1.3 * size) @ rot.T + (cx, cy)

    f.poly(put(ellipse(0, 0.15, 0.42, 0.5)), skin)
    for k, length in enumerate((0.55, 0.65, 0.6, 0.48)):
        fx = -0.3 + 0.2 * k
        finger = np.array(
            [
                [fx - 0.09, 0.0],
                [fx - 0.08, -length],
                [fx, -length - 0.08],
                [fx + 0.08, -length],
                [fx + 0.09, 0.0],
            ]
        )
        f.poly(put(finger), skin)
        f.line(
            put(np.array([[fx + 0.1, -0.05], [fx + 0.1, -length + 0.1]])), _shade(skin, 0.75), 0.02
        )
    thumb = np.array([[0.3, 0.2], [0.65, -0.05], [0.7, 0.05], [0.4, 0.45]])
    f.poly(put(thumb), skin)


def hand_mouth(f: FaceFrame, rng: np.random.Generator, side: int) -> None:
    """A hand held over the mouth: fingers across the face, or upright from below the chin."""
    size = rng.uniform(0.9, 1.15)
    if rng.random() < 0.6:
        angle, dy = rng.choice([-1, 1]) * rng.uniform(1.2, 1.7), rng.uniform(-0.05, 0.15)
    else:  # upright: the palm sits lower so the fingers end around the nose
        angle, dy = rng.uniform(-0.4, 0.4), rng.uniform(0.3, 0.45)
    _hand(f, rng, rng.uniform(-0.25, 0.25), f.mouth + dy, size, angle)


def phone(f: FaceFrame, rng: np.random.Generator, side: int) -> None:
    """A phone held in front of the mouth and chin, screen towards the viewer or away."""
    w, h = rng.uniform(0.38, 0.5), rng.uniform(0.85, 1.15)
    cx, cy = rng.uniform(-0.3, 0.3), f.mouth + rng.uniform(0.05, 0.3)
    a = rng.uniform(-0.5, 0.5)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    body = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) @ rot.T + (cx, cy)
    f.poly(body, _random_colour(rng, 0, 90))
    screen = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) * 0.86 @ rot.T + (cx, cy)
    f.poly(screen, _rgba(rng.integers(40, 200, size=3)))
    f.poly(
        np.array([[-w, -h * 0.2], [-w * 0.2, -h], [w * 0.2, -h], [-w, h * 0.4]]) * 0.86 @ rot.T
        + (cx, cy),
        (255, 255, 255, 50),
    )  # glare
    _hand(f, rng, cx + rng.uniform(-0.1, 0.1), cy + h * 0.8, 0.7, rng.uniform(-0.3, 0.3))


# ---------------------------------------------------------------- one side
def hand_side(f: FaceFrame, rng: np.random.Generator, side: int) -> None:
    """A hand resting against one side of the face (cheek and part of the eye)."""
    sign = -1 if side == 0 else 1
    cx = sign * rng.uniform(0.55, 0.85)
    _hand(
        f, rng, cx, rng.uniform(0.35, 0.75), rng.uniform(1.05, 1.3), sign * rng.uniform(-0.1, 0.35)
    )


def hair(f: FaceFrame, rng: np.random.Generator, side: int) -> None:
    """A curtain of hair hanging over one side of the face, with strands."""
    sign = -1 if side == 0 else 1
    colour = _rgba(HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))])
    inner = rng.uniform(0.05, 0.4)
    y = np.linspace(-3.0, 4.0, 15)
    edge = (
        inner + 0.12 * np.sin(y * rng.uniform(1, 3) + rng.uniform(0, 6)) + 0.08 * (y - 0.5) ** 2 / 4
    )
    pts = np.concatenate([np.stack([sign * edge, y], 1), [[sign * 4.0, 4.0], [sign * 4.0, -3.0]]])
    f.poly(pts, colour)
    for k in range(8):
        x = sign * (inner + 0.12 + 0.2 * k)
        f.line(
            np.array([[x, -2.5], [x + sign * 0.1, 1.0], [x - sign * 0.05, 3.5]]),
            _shade(colour, rng.uniform(0.6, 1.4)),
            0.025,
        )


# ---------------------------------------------------------------- one eye
def eyepatch(f: FaceFrame, rng: np.random.Generator, side: int) -> None:
    """A patch over one eye with its strap across the forehead."""
    cx = (-0.5 if side == 0 else 0.5) + rng.uniform(-0.06, 0.06)
    colour = _random_colour(rng, 0, 60) if rng.random() < 0.7 else _random_colour(rng, 150, 256)
    rx, ry = rng.uniform(0.33, 0.42), rng.uniform(0.27, 0.35)
    strap = np.array(
        [[-1.3, -0.9 if side == 0 else 0.2], [cx, 0.0], [1.3, 0.2 if side == 0 else -0.9]]
    )
    f.line(strap, _shade(colour, 0.8), 0.05)
    f.poly(ellipse(cx, rng.uniform(-0.03, 0.05), rx, ry), colour)


def hand_eye(f: FaceFrame, rng: np.random.Generator, side: int) -> None:
    """A hand (palm or fingers) covering one eye."""
    sign = -1 if side == 0 else 1
    _hand(
        f,
        rng,
        sign * rng.uniform(0.45, 0.65),
        rng.uniform(-0.2, 0.0),
        rng.uniform(0.75, 0.95),
        sign * rng.uniform(0.2, 0.8),
    )


# ---------------------------------------------------------------- anywhere
def random_object(f: FaceFrame, rng: np.random.Generator, side: int) -> None:
    """A random object (disc, box, polygon or cup) of random size and texture on the face."""
    cx, cy = rng.uniform(-0.8, 0.8), rng.uniform(-0.5, f.mouth + 0.3)
    r = rng.uniform(0.45, 0.8)
    colour = _random_colour(rng)
    kind = int(rng.integers(4))
    if kind == 0:
        pts = ellipse(cx, cy, r, r * rng.uniform(0.7, 1.4))
    elif kind == 1:
        a = rng.uniform(0, math.pi)
        pts = ellipse(cx, cy, r * 1.2, r * rng.uniform(0.7, 1.2), n=5, t0=a, t1=a + 2 * math.pi)
    elif kind == 2:
        t = np.sort(rng.uniform(0, 2 * math.pi, size=int(rng.integers(5, 9))))
        rad = r * rng.uniform(0.8, 1.3, size=t.size)
        pts = np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1)
    else:  # a cup: body and handle
        pts = np.array(
            [
                [cx - r * 0.6, cy - r],
                [cx + r * 0.6, cy - r],
                [cx + r * 0.5, cy + r],
                [cx - r * 0.5, cy + r],
            ]
        )
        f.line(ellipse(cx + r * 0.65, cy, r * 0.35, r * 0.4, t0=-1.5, t1=1.5), colour, 0.06)
    f.poly(pts, colour)
    stripe = _random_colour(rng)
    for k in range(int(rng.integers(0, 5))):
        y = cy - r + (k + 0.5) * 2 * r / 5
        f.line(np.array([[cx - r * 0.5, y], [cx + r * 0.5, y]]), stripe, 0.04)


Drawer = Callable[[FaceFrame, np.random.Generator, int], None]
