"""Test scenes for the inference tests: drawn faces pasted into larger images at known places.
(Plain helpers, not a test module; the shared fixtures live in conftest.py.)"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


def finds_pasted_faces(detect: Callable[[np.ndarray], Sequence], seed: int) -> Sequence:
    """Run ``detect`` on ``scene_with_faces(seed, n_faces=2, size=384, face=96)`` and check that
    it finds exactly the two faces, each pasted box matched by a found ``.box`` (IoU > 0.4).

    Returns:
        What ``detect`` found (objects with a ``.box``), for the caller's further checks.
    """
    img, boxes = scene_with_faces(seed, n_faces=2, size=384, face=96)
    faces = detect(img)
    assert len(faces) == 2, (seed, [f.box for f in faces])
    for true in boxes:
        assert max(box_iou(f.box, true) for f in faces) > 0.4, (seed, true)
    return faces


# A real photograph that ships with a core dependency (matplotlib's sample data): Grace Hopper,
# frontal, 512x600. Its face box (brows to chin, hand-set) and the region pasted into scenes.
PHOTO_FACE = (165.0, 110.0, 370.0, 335.0)
_PHOTO_REGION = (90, 40, 450, 420)


def photo() -> np.ndarray:
    """matplotlib's ``grace_hopper.jpg`` as (600, 512, 3) uint8 RGB."""
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB"))


def photo_scene(
    seed: int, height: int = 480, width: int = 640, face: tuple[int, int] = (80, 200),
    max_angle: float = 8.0,
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The photo's face region, maybe mirrored, turned by up to ``max_angle`` degrees about the
    face's centre and scaled to a face side in ``face``, pasted at a random place on a smooth
    background; returns the scene and the face box in it."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = _PHOTO_REGION
    region = photo()[y0:y1, x0:x1]
    fx0, fy0, fx1, fy1 = (v - o for v, o in zip(PHOTO_FACE, (x0, y0, x0, y0), strict=True))
    if rng.random() < 0.5:
        region = region[:, ::-1]
        fx0, fx1 = region.shape[1] - fx1, region.shape[1] - fx0
    centre = ((fx0 + fx1) / 2, (fy0 + fy1) / 2)
    im = Image.fromarray(np.ascontiguousarray(region)).rotate(
        float(rng.uniform(-max_angle, max_angle)), resample=Image.Resampling.BILINEAR,
        center=centre, fillcolor=(128, 128, 128))
    s = float(rng.integers(*face)) / (fx1 - fx0)
    im = im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BILINEAR)
    scene = background(height, width, seed)
    px = int(rng.integers(0, max(1, width - im.width)))
    py = int(rng.integers(0, max(1, height - im.height)))
    scene[py:py + im.height, px:px + im.width] = np.asarray(im)[: height - py, : width - px]
    return scene, (fx0 * s + px, fy0 * s + py, fx1 * s + px, fy1 * s + py)
