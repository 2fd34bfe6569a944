"""File helpers of the synthetic data and occlusion writers: atomic PNGs and manifests.

The manifest format is the project's generic one (`<root>/manifest.csv`, header
``path,label,split[,extra...]``), read back by the `manifest` adapter of `fermixnet.data`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fermixnet.fileio import atomic_write

BASE_COLUMNS: tuple[str, ...] = ("path", "label", "split")
SPLITS: tuple[str, ...] = ("train", "val", "test")


def save_png(image: np.ndarray, path: Path) -> None:
    """Write an (H, W, 3) uint8 image as PNG, atomically; identical input gives identical bytes."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=4)
    atomic_write(path, buf.getvalue(), fsync=False)  # regenerable: skip the flush per image


def format_value(value: object) -> str:
    """Manifest cell text: floats with 4 decimals (stable across runs), the rest via `str`."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4f}"
    return str(value)


def write_manifest(path: Path, rows: Sequence[Mapping[str, object]], extra: Sequence[str]) -> None:
    """Write `rows` as a manifest with columns ``path,label,split`` + `extra`, atomically."""
    columns = list(BASE_COLUMNS) + [c for c in extra if c not in BASE_COLUMNS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_value(row.get(c, "")) for c in columns])
    atomic_write(path, buf.getvalue().encode("utf-8"))


def union_columns(rows: Iterable[Mapping[str, object]]) -> list[str]:
    """All keys of `rows` in first-seen order (manifest extra columns)."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)
