"""Synthetic facial-expression data set: procedurally drawn faces whose expressions are FACS AUs.

Used by the demo and the tests, where no real data set may be downloaded. Each image is drawn from
its own generator ``np.random.default_rng([seed, split_id, index])``, so the output does not depend
on the number of worker processes or the order of work, and the same seed gives identical files.

Layout written (the project's generic manifest format)::

    <out>/manifest.csv                     path,label,split,occlusion,occluder,<meta...>
    <out>/images/<split>/<class>/<index>.png   (so `folder:<out>/images` reads it too)
    <out>/synthetic.json                   seed, size, counts and generator settings

Example:
    >>> from fermixnet.synth.generate import generate_synthetic
    >>> generate_synthetic("data/synth", seed=0, size=64, counts={"train": 70, "test": 14})
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from fermixnet.fileio import atomic_write
from fermixnet.synth.faces import AU_NAMES, AUS, HAIR_STYLES, Face, SynthConfig, sample_face
from fermixnet.synth.files import SPLITS, save_png, union_columns, write_manifest
from fermixnet.synth.render import render_face

SPLIT_IDS: Mapping[str, int] = {name: i for i, name in enumerate(SPLITS)}
DEFAULT_COUNTS: Mapping[str, int] = {"train": 2800, "val": 350, "test": 700}

__all__ = [
    "AU_NAMES",
    "DEFAULT_COUNTS",
    "SynthConfig",
    "face_meta",
    "generate_synthetic",
    "render_sample",
]


def face_meta(face: Face, marks: Mapping[str, float]) -> dict[str, object]:
    """Per-image manifest columns: AU intensities, expression mix, identity, pose, landmarks."""
    meta: dict[str, object] = {"occlusion": "none", "occluder": "none"}
    meta["intensity"] = face.intensity
    meta["blend"] = face.blend or "none"
    meta["blend_weight"] = face.blend_weight
    for i, au in enumerate(AUS):
        meta[f"au{au:02d}"] = float(face.aus[:, i].max())
    asym = face.aus[1] - face.aus[0]
    meta["asym_side"] = (
        "none" if np.abs(asym).max() < 0.2 else ("right" if asym.sum() > 0 else "left")
    )
    meta["skin_tone"] = face.ident["skin_tone"]
    meta["hair_style"] = HAIR_STYLES[int(face.ident["hair_style"])]
    meta["roll"] = face.pose["roll"]
    meta["scale"] = face.pose["scale"]
    meta["blur"] = face.scene["blur"]
    meta["noise"] = face.scene["noise"]
    meta.update({f"lm_{k}": v for k, v in marks.items()})
    return meta


def render_sample(
    seed: int, split: str, index: int, size: int, cfg: SynthConfig
) -> tuple[np.ndarray, int, dict[str, object]]:
    """Image, label and meta of sample `index` of `split` (classes balanced by index modulo K)."""
    if split not in SPLIT_IDS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    label = index % cfg.num_classes
    face = sample_face(label, cfg, rng)
    image, marks = render_face(face, size, rng, supersample=2 if size >= 48 else 3)
    return image, label, face_meta(face, marks)


def _work(args: tuple[Path, int, str, int, int, SynthConfig]) -> dict[str, object]:
    out, seed, split, index, size, cfg = args
    image, label, meta = render_sample(seed, split, index, size, cfg)
    name = cfg.classes[label]
    rel = f"images/{split}/{name}/{index:06d}.png"
    save_png(image, out / rel)
    return {"path": rel, "label": name, "split": split, **meta}


def _tasks(
    out: Path, seed: int, counts: Mapping[str, int], size: int, cfg: SynthConfig
) -> Iterator[tuple[Path, int, str, int, int, SynthConfig]]:
    for split in SPLITS:
        for index in range(counts.get(split, 0)):
            yield out, seed, split, index, size, cfg


def _check_counts(counts: Mapping[str, int]) -> None:
    for split, n in counts.items():
        if split not in SPLIT_IDS:
            raise ValueError(f"counts: unknown split {split!r}; expected {', '.join(SPLITS)}")
        if n < 0:
            raise ValueError(f"counts: --{split} must be >= 0, got {n}")


def generate_synthetic(
    out: str | Path,
    seed: int = 0,
    size: int = 96,
    counts: Mapping[str, int] | None = None,
    config: SynthConfig | None = None,
    workers: int = 1,
) -> Path:
    """Draw the synthetic data set and write it in the manifest format.

    Args:
        out: output root (created; existing images of the same names are overwritten).
        seed: master seed; the same seed, size, counts and config give byte-identical files.
        size: side of the square images in pixels (>= 16).
        counts: images per split, e.g. ``{"train": 2800, "val": 350, "test": 700}``.
        config: generator settings (`SynthConfig`); the calibrated defaults when None.
        workers: processes drawing in parallel (the output does not depend on it).

    Returns:
        Path of the written ``manifest.csv``.

    Raises:
        ValueError: for a size below 16, unknown splits or negative counts.
    """
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    _check_counts(counts)
    cfg = config or SynthConfig()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    tasks = list(_tasks(root, seed, counts, size, cfg))
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(_work, tasks, chunksize=max(1, len(tasks) // (8 * workers))))
    else:
        rows = [_work(t) for t in tasks]
    manifest = root / "manifest.csv"
    write_manifest(manifest, rows, union_columns(rows))
    info = {
        "seed": seed,
        "size": size,
        "counts": counts,
        "config": dataclasses.asdict(cfg),
        "generator": "fermixnet.synth.generate",
    }
    atomic_write(root / "synthetic.json", json.dumps(info, indent=2).encode("utf-8"))
    return manifest
