"""Tiny on-disk replicas of the data set formats, shared by the tests/test_data_*.py files.

Images are 8-16 px, generated with a seeded generator; list files copy the real layouts and
quirks (CRLF, a duplicated line, `N 7` headers, FED-RO's `neural` folder, AffectNet codes 8-10).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

RNG_SEED = 0


def image_array(seed: int, h: int = 12, w: int = 10) -> np.ndarray:
    """A reproducible (h, w, 3) uint8 image."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (12, 10), mode: str = "RGB"):
    """Write a small image in `mode` (RGB, L, RGBA, CMYK, I;16) to `path`; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = image_array(seed, *size)
    if mode == "I;16":
        Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(path)
    else:
        Image.fromarray(rgb).convert(mode).save(path)
    return path


def write_truncated_jpeg(path: Path, seed: int = 0) -> Path:
    """A JPEG cut in half: PIL opens it but fails when decoding."""
    buf = io.BytesIO()
    Image.fromarray(image_array(seed, 16, 16)).save(buf, format="JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def write_corrupt(path: Path) -> Path:
    """A file with an image name and garbage content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an image at all")
    return path


def make_folder_tree(root: Path, layout: dict[str, dict[str, int]]) -> Path:
    """`root/<split>/<class>/<k>.png` with layout {split: {class: count}}."""
    seed = 0
    for split, classes in layout.items():
        for name, count in classes.items():
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for k in range(count):
                write_image(root / split / name / f"{k}.png", seed)
                seed += 1
    return root


def test_replica_images_are_reproducible(tmp_path):
    a = write_image(tmp_path / "a.png", seed=3)
    b = write_image(tmp_path / "b.png", seed=3)
    assert a.read_bytes() == b.read_bytes()
    assert np.asarray(Image.open(a)).shape == (12, 10, 3)
