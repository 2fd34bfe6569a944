"""Realistic synthetic occlusion of face images, for occlusion test sets of any data set.

Occlusion types follow the structure of the paper's Table 2 (upper/lower, left/right, corner) plus
random objects; each type has several occluders whose shape, size, position and texture vary per
image and follow the face's landmarks, so they do not coincide with FERMix's fixed half/quarter
boxes (Eqs. 1-3):

========  =======================================  ==========================================
type      occluders (``occluder`` column)           covers
========  =======================================  ==========================================
upper     sunglasses, hat                           eyes / brows and forehead
lower     mask, scarf, hand, phone                  mouth, chin (and nose)
left      hand, hair                                the image-left side of the face
right     hand, hair                                the image-right side of the face
corner    eyepatch, hand                            one eye (``occ_side`` says which)
object    object                                    a random object anywhere on the face
========  =======================================  ==========================================

``left`` is the left half of the image array (as FERMix's ``left`` region), i.e. the subject's
right side. Landmarks come from the sample's meta (``lm_eye_l_x`` ... as written by the synthetic
generator) or, for other data sets, from the aligned-face template (eyes at (0.35, 0.4) and
(0.65, 0.4), mouth at (0.5, 0.75) of the image) with random jitter.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fermixnet.data.registry import create_dataset, parse_data_spec
from fermixnet.fileio import temp_dir
from fermixnet.labels import CANONICAL
from fermixnet.synth import occluder_shapes as shapes
from fermixnet.synth.files import SPLITS, save_png, union_columns, write_manifest
from fermixnet.synth.occluder_shapes import Drawer, FaceFrame, Landmarks

OCCLUSION_TYPES: tuple[str, ...] = ("upper", "lower", "left", "right", "corner", "object")

OCCLUDERS: Mapping[str, Mapping[str, Drawer]] = {
    "upper": {"sunglasses": shapes.sunglasses, "hat": shapes.hat},
    "lower": {
        "mask": shapes.mask,
        "scarf": shapes.scarf,
        "hand": shapes.hand_mouth,
        "phone": shapes.phone,
    },
    "left": {"hand": shapes.hand_side, "hair": shapes.hair},
    "right": {"hand": shapes.hand_side, "hair": shapes.hair},
    "corner": {"eyepatch": shapes.eyepatch, "hand": shapes.hand_eye},
    "object": {"object": shapes.random_object},
}

# Aligned-face template (fractions of width, height) for images without landmarks.
TEMPLATE: Mapping[str, tuple[float, float]] = {
    "eye_l": (0.35, 0.4),
    "eye_r": (0.65, 0.4),
    "mouth": (0.5, 0.75),
}

__all__ = [
    "OCCLUDERS",
    "OCCLUSION_TYPES",
    "TEMPLATE",
    "Landmarks",
    "Occlusion",
    "landmarks_for",
    "occlude",
    "occlude_dataset",
    "parse_types",
]


@dataclass(frozen=True)
class Occlusion:
    """Result of `occlude`.

    Attributes:
        image: (H, W, 3) uint8 occluded image.
        alpha: (H, W) float32 coverage in [0, 1] of the occluder (1 = fully hidden).
        kind: occlusion type (a key of `OCCLUDERS`).
        occluder: occluder name.
        side: ``left``/``right`` for one-sided types and corners, else ``both``.
        area: fraction of image pixels with coverage >= 0.5.
    """

    image: np.ndarray
    alpha: np.ndarray
    kind: str
    occluder: str
    side: str
    area: float


def parse_types(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Occlusion types from ``"upper,lower"`` or a list; ``"all"`` gives every type.

    Raises:
        ValueError: naming an unknown type and the valid ones.
    """
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if items == ["all"]:
        return OCCLUSION_TYPES
    for item in items:
        if item not in OCCLUDERS:
            raise ValueError(
                f"unknown occlusion type {item!r}; expected {', '.join(OCCLUSION_TYPES)}"
            )
    if not items:
        raise ValueError("no occlusion type given; expected e.g. upper,lower or all")
    return tuple(dict.fromkeys(items))


def landmarks_for(
    meta: Mapping[str, str], width: int, height: int, rng: np.random.Generator
) -> Landmarks:
    """Landmarks in pixels: from ``lm_*`` meta columns when present, else the jittered template."""
    keys = ("eye_l", "eye_r", "mouth")
    try:
        pts = {k: (float(meta[f"lm_{k}_x"]), float(meta[f"lm_{k}_y"])) for k in keys}
    except (KeyError, ValueError):
        jitter = rng.uniform(-0.025, 0.025, size=(3, 2))
        pts = {
            k: (TEMPLATE[k][0] + jitter[i, 0], TEMPLATE[k][1] + jitter[i, 1])
            for i, k in enumerate(keys)
        }
    return Landmarks(*((x * width, y * height) for x, y in (pts[k] for k in keys)))


def _texture(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grain and a soft lighting gradient on the occluder's colours."""
    h, w = rgb.shape[:2]
    grain = rng.standard_normal((h, w, 1), dtype=np.float32) * rng.uniform(2, 12)
    ramp = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None] * rng.uniform(-0.15, 0.15)
    return rgb * (1 + ramp) + grain


def occlude(
    image: np.ndarray,
    kind: str,
    rng: np.random.Generator,
    landmarks: Landmarks | None = None,
    occluder: str | None = None,
) -> Occlusion:
    """Draw one occluder of type `kind` onto a face image.

    Args:
        image: (H, W, 3) uint8 RGB face, any size (not modified).
        kind: occlusion type, one of `OCCLUSION_TYPES`.
        rng: generator for every random choice (shape, size, position, colour, texture).
        landmarks: eye and mouth positions in pixels; the jittered template when None.
        occluder: a specific occluder of the type (e.g. ``"mask"``); random when None.

    Returns:
        The occluded image with its coverage mask and the occluder's description.

    Raises:
        ValueError: for an unknown type or occluder, or an image that is not (H, W, 3) uint8.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    kind = parse_types([kind])[0]
    names = list(OCCLUDERS[kind])
    if occluder is None:
        occluder = names[int(rng.integers(len(names)))]
    elif occluder not in OCCLUDERS[kind]:
        raise ValueError(
            f"occluder {occluder!r} is not of type {kind!r}; expected {', '.join(names)}"
        )
    h, w = image.shape[:2]
    lm = landmarks or landmarks_for({}, w, h, rng)
    side = {"left": 0, "right": 1}.get(kind, int(rng.integers(2)))
    scale = 2 if max(h, w) <= 256 else 1  # supersampled drawing for anti-aliased edges
    layer = Image.new("RGBA", (w * scale, h * scale), (0, 0, 0, 0))
    OCCLUDERS[kind][occluder](FaceFrame(ImageDraw.Draw(layer, "RGBA"), lm, scale), rng, side)
    if scale > 1:
        layer = layer.reduce(scale)
    arr = np.asarray(layer, dtype=np.float32)
    alpha = arr[..., 3] / 255.0
    rgb = _texture(arr[..., :3], rng)
    out = image.astype(np.float32) * (1 - alpha[..., None]) + rgb * alpha[..., None]
    side_name = ("left", "right")[side] if kind in ("left", "right", "corner") else "both"
    return Occlusion(
        image=np.clip(out + 0.5, 0, 255).astype(np.uint8),
        alpha=alpha.astype(np.float32),
        kind=kind,
        occluder=occluder,
        side=side_name,
        area=float((alpha >= 0.5).mean()),
    )


# ---------------------------------------------------------------- whole data sets
Item = tuple[str, int, dict[str, str]]


def _source(data: str, split: str) -> tuple[list[Item], Callable[[int], np.ndarray]]:
    """Samples (path, canonical label, meta) of one split through the data adapters."""
    name, root, options = parse_data_spec(data)
    ds = create_dataset(name, root, split, **options)
    return [(s.path, int(s.label), dict(s.meta)) for s in ds.samples], ds.load


def _row(path: str, root: Path, label: int, split: str, meta: Mapping[str, str]) -> dict:
    try:
        source = str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        source = str(path)
    drop = {"path", "label", "split", "occlusion", "occluder", "occ_side", "occ_area", "source"}
    row = {
        "path": "",
        "label": CANONICAL[label],
        "split": split,
        "occlusion": "none",
        "occluder": "none",
        "occ_side": "none",
        "occ_area": 0.0,
        "source": source,
    }
    row.update({k: v for k, v in meta.items() if k not in drop})
    return row


def _occlude_item(
    image: np.ndarray,
    base: dict,
    kinds: tuple[str, ...],
    root: Path,
    key: tuple[int, int, int],
    keep_clean: bool,
    occluders: tuple[str, ...] | None = None,
) -> list[dict]:
    """Write the clean copy (optional) and one occluded copy per type of one image."""
    seed, split_id, i = key
    split, rows = base["split"], []
    if keep_clean:
        rel = f"images/{split}/none/{i:06d}.png"
        save_png(image, root / rel)
        rows.append({**base, "path": rel})
    h, w = image.shape[:2]
    for kind in kinds:
        rng = np.random.default_rng([seed, split_id, i, OCCLUSION_TYPES.index(kind)])
        lm = landmarks_for(base, w, h, rng)
        pick = None
        if occluders is not None:  # only these occluders (e.g. those a model never trained with)
            names = [n for n in OCCLUDERS[kind] if n in occluders]
            pick = names[int(rng.integers(len(names)))]
        occ = occlude(image, kind, rng, lm, occluder=pick)
        rel = f"images/{split}/{kind}/{i:06d}.png"
        save_png(occ.image, root / rel)
        rows.append(
            {
                **base,
                "path": rel,
                "occlusion": kind,
                "occluder": occ.occluder,
                "occ_side": occ.side,
                "occ_area": occ.area,
            }
        )
    return rows


def occlude_dataset(
    data: str,
    out: str | Path,
    types: tuple[str, ...] = OCCLUSION_TYPES,
    seed: int = 0,
    splits: tuple[str, ...] = ("test",),
    random_type: bool = False,
    keep_clean: bool = True,
    occluders: Sequence[str] | None = None,
) -> Path:
    """Write occluded copies of a data set's images as a new manifest data set.

    By default every image gets one copy per occlusion type, so per-type accuracies (Table 2's
    structure) compare the same faces; with ``random_type`` each image gets one random type.
    Labels and splits are kept; ``occlusion``, ``occluder``, ``occ_side``, ``occ_area`` and
    ``source`` are recorded per image, with the source's other meta columns. Image i of split s
    with type t is drawn from ``np.random.default_rng([seed, s, i, t])``, so output is reproducible.

    Everything is written to a staging folder beside ``out`` that is renamed to ``out`` only when
    complete, so a failed or interrupted run leaves no half-written data set.

    Args:
        data: source data set as ``name:root[,key=value]`` (any adapter of `fermixnet.data`).
        out: output root (manifest.csv + images/<split>/<type>/); must not exist or be empty,
            and must not lie inside the source data folder (which is never written to).
        types: occlusion types to draw.
        seed: master seed.
        splits: splits of the source to occlude.
        random_type: one random type per image instead of one copy per type.
        keep_clean: also write the unoccluded image (``occlusion=none``) for clean accuracy.
        occluders: draw only these occluders (names of the ``occluder`` column, e.g. the
            families a model did not train with); types with none of them are left out. None:
            every occluder of each type (and the same images as before this option existed).

    Returns:
        Path of the written manifest.

    Raises:
        ValueError: ``out`` inside the source folder (or holding it), ``out`` not empty, or no
            images in the chosen splits.
    """
    types = parse_types(list(types))
    allowed = None
    if occluders is not None:
        allowed = tuple(occluders)
        known = {n for names in OCCLUDERS.values() for n in names}
        if not allowed or set(allowed) - known:
            raise ValueError(f"occluders: unknown or none in {list(allowed)}; expected names "
                             f"among {', '.join(sorted(known))}")
        types = tuple(t for t in types if any(n in allowed for n in OCCLUDERS[t]))
        if not types:
            raise ValueError(f"occluders {', '.join(allowed)}: none is of the chosen types")
    root = Path(out).expanduser()
    src_root = Path(parse_data_spec(data)[1]).expanduser()
    _check_output(root, src_root)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_dir(root.parent, f".{root.name}.partial-")
    try:
        rows = []
        for split in splits:
            rows += _occlude_split(data, split, src_root, staging, types, seed,
                                   random_type, keep_clean, allowed)  # fmt: skip
        if not rows:
            raise ValueError(f"--data {data!r}: no images in split(s) {', '.join(splits)}")
        write_manifest(staging / "manifest.csv", rows, union_columns(rows))
        if root.is_dir():
            root.rmdir()  # empty (checked above): os.replace needs the name free
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root / "manifest.csv"


def _check_output(root: Path, src_root: Path) -> None:
    """Refuse an output folder inside the source data folder (or holding it), or not empty."""
    source = (src_root.parent if src_root.is_file() else src_root).resolve()
    target = root.resolve()
    if target.is_relative_to(source) or source.is_relative_to(target):
        raise ValueError(
            f"--out {root} is inside the source data folder {source} (or holds it); the data "
            "folder is never written to: choose another --out"
        )
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ValueError(f"--out {root} exists and is not empty; remove it or choose another --out")


def _occlude_split(
    data: str, split: str, src_root: Path, root: Path, types: tuple[str, ...], seed: int,
    random_type: bool, keep_clean: bool, occluders: tuple[str, ...] | None = None,
) -> list[dict]:  # fmt: skip
    """Write the occluded copies of one split under `root`; their manifest rows."""
    items, load = _source(data, split)
    split_id = SPLITS.index(split) if split in SPLITS else len(SPLITS)
    rows = []
    for i, (path, label, meta) in enumerate(items):
        chosen = types
        if random_type:
            pick = np.random.default_rng([seed, split_id, i, 99]).integers(len(types))
            chosen = (types[int(pick)],)
        base = _row(path, src_root, label, split, meta)
        rows += _occlude_item(load(i), base, chosen, root, (seed, split_id, i), keep_clean,
                              occluders)
    return rows
