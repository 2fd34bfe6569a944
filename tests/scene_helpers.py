"""Test scenes for the inference tests: drawn faces pasted into larger images at known places.
(Plain helpers, not a test module; the shared fixtures live in conftest.py.)"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def drawn_face(size: int, seed: int = 0, occluder: str | None = None) -> np.ndarray:
    """A cartoon face filling a (size, size) square: hair, brows, shaded eye sockets, eyes, nose,
    mouth; ``occluder`` in (None, "sunglasses", "mask")."""
    rng = np.random.default_rng(seed)
    s = size
    img = Image.new("RGB", (s, s), (200, 200, 200))
    d = ImageDraw.Draw(img)
    skin = tuple(int(v) for v in rng.integers([170, 120, 90], [235, 180, 150]))
    dark = tuple(int(c * 0.6) for c in skin)
    d.ellipse((0.12 * s, 0.05 * s, 0.88 * s, 0.98 * s), fill=skin)
    d.ellipse((0.10 * s, 0.0, 0.90 * s, 0.30 * s), fill=(60, 40, 30))
    d.ellipse((0.14 * s, 0.16 * s, 0.86 * s, 0.98 * s), fill=skin)
    for cx in (0.34 * s, 0.66 * s):
        d.ellipse((cx - 0.13 * s, 0.34 * s, cx + 0.13 * s, 0.50 * s), fill=dark)
        d.line((cx - 0.12 * s, 0.32 * s, cx + 0.12 * s, 0.31 * s), fill=(50, 35, 25),
               width=max(3, s // 25))
        d.ellipse((cx - 0.07 * s, 0.39 * s, cx + 0.07 * s, 0.45 * s), fill=(230, 230, 230))
        d.ellipse((cx - 0.035 * s, 0.385 * s, cx + 0.035 * s, 0.455 * s), fill=(40, 30, 20))
    light = tuple(min(255, c + 15) for c in skin)
    d.polygon([(0.5 * s, 0.42 * s), (0.43 * s, 0.63 * s), (0.57 * s, 0.63 * s)], fill=light)
    d.ellipse((0.44 * s, 0.59 * s, 0.56 * s, 0.65 * s), fill=dark)
    d.chord((0.34 * s, 0.68 * s, 0.66 * s, 0.82 * s), 0, 180, fill=(120, 30, 40))
    if occluder == "sunglasses":
        d.rectangle((0.18 * s, 0.35 * s, 0.82 * s, 0.49 * s), fill=(10, 10, 10))
    elif occluder == "mask":
        d.rectangle((0.2 * s, 0.6 * s, 0.8 * s, 0.92 * s), fill=(120, 170, 220))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(s / 150)))


def background(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random background (no face-like structure)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (16, 16, 3)).astype(np.uint8)
    return np.array(Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR))


def paste(scene: np.ndarray, face: np.ndarray, x: int, y: int) -> tuple[int, int, int, int]:
    """Paste ``face`` at ``(x, y)`` in place; returns its box ``(x0, y0, x1, y1)``."""
    h, w = face.shape[:2]
    scene[y : y + h, x : x + w] = face
    return (x, y, x + w, y + h)


def scene_with_faces(
    seed: int, n_faces: int = 1, size: int = 320, face: int = 96, occluder: str | None = None
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A (size, size) scene with ``n_faces`` drawn faces side by side; returns it and the boxes."""
    img = background(size, size, seed)
    rng = np.random.default_rng(seed)
    boxes = []
    step = size // max(1, n_faces)
    for i in range(n_faces):
        x = i * step + int(rng.integers(4, max(5, step - face - 4)))
        y = int(rng.integers(4, size - face - 4))
        boxes.append(paste(img, drawn_face(face, seed + i, occluder), x, y))
    return img, boxes


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two (x0, y0, x1, y1) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
