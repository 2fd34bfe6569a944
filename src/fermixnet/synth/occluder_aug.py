"""Realistic-occluder training: the project's occluders drawn on training faces (`aug.occluders`).

The occluders of `fermixnet.synth.occlude` (masks, sunglasses, hands, phones, scarves, hair, ...)
are grouped into *families* by what they are, whichever face region they cover: ``hand`` is a hand
over the mouth, over one side or over one eye. With probability ``p`` a training face gets one
occluder of a family drawn uniformly from the chosen ones, placed by the face's landmarks: the
generator's exact ones for synthetic faces (``lm_eye_l_x`` ... manifest columns), otherwise the
data set's framing template (`fermixnet.framing.Framing.points`) with a little jitter.

Unlike FERMix's fixed half/quarter boxes (Eqs. 1-3), these follow the face. To keep an evaluation
honest, a model trained with some families is tested on the others (`held_out_families`,
`occluders_by_type`): `fermixnet compare` does so.

Each sample's draws come from ``np.random.default_rng([stream_seed, index])``, where the trainer
sets ``stream_seed`` from the run's seed and the epoch (`OccludedTrainSet.set_seed`): the same
seed gives the same images in any worker, order or after a resume.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from fermixnet.synth.occlude import OCCLUDERS, OCCLUSION_TYPES, Landmarks, occlude


def _families() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for kind, names in OCCLUDERS.items():
        for name in names:
            out.setdefault(name, []).append(kind)
    return {name: tuple(kinds) for name, kinds in out.items()}


FAMILIES: Mapping[str, tuple[str, ...]] = _families()
"""Occluder family -> the occlusion types (`OCCLUSION_TYPES`) it is drawn as."""
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)

__all__ = ["FAMILIES", "FAMILY_NAMES", "OccludedTrainSet", "draw_occluder", "held_out_families",
           "landmark_table", "occluders_by_type", "resolve_families",
           "train_landmarks"]


def resolve_families(names: Sequence[str], key: str = "aug.occluders.families") -> tuple[str, ...]:
    """Families from a list (``["all"]``: every family), in `FAMILY_NAMES` order.

    Raises:
        ValueError: an unknown or no family, naming `key` and the choices.
    """
    items = [str(n).strip() for n in names if str(n).strip()]
    if items == ["all"]:
        return FAMILY_NAMES
    bad = [n for n in items if n not in FAMILIES]
    if bad or not items:
        what = f"unknown occluder famil{'ies' if len(bad) > 1 else 'y'} {', '.join(bad)}" \
            if bad else "no occluder family given"
        raise ValueError(f"config key '{key}': {what}; expected 'all' or a list of "
                         f"{', '.join(FAMILY_NAMES)} (e.g. --set {key}=[mask,hand])")
    return tuple(n for n in FAMILY_NAMES if n in items)


def held_out_families(trained: Sequence[str]) -> tuple[str, ...]:
    """The families a model trained with `trained` never saw (in `FAMILY_NAMES` order)."""
    seen = set(resolve_families(trained)) if trained else set()
    return tuple(n for n in FAMILY_NAMES if n not in seen)


def occluders_by_type(families: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Occlusion type -> the occluders of `families` it has; types with none are left out."""
    out = {}
    for kind in OCCLUSION_TYPES:
        names = tuple(n for n in OCCLUDERS[kind] if n in families)
        if names:
            out[kind] = names
    return out


def landmark_table(metas: Sequence[Mapping[str, str]]) -> np.ndarray:
    """(N, 3, 2) float32 eye (image-left, image-right) and mouth positions as fractions of the
    image side, from the ``lm_*`` meta columns; NaN where a sample has none."""
    table = np.full((len(metas), 3, 2), np.nan, dtype=np.float32)
    for i, meta in enumerate(metas):
        try:
            table[i] = [[float(meta[f"lm_{k}_x"]), float(meta[f"lm_{k}_y"])]
                        for k in ("eye_l", "eye_r", "mouth")]
        except (KeyError, ValueError):
            continue
    return table


def _template(points: np.ndarray) -> np.ndarray:
    """(3, 2) eyes and mouth centre from a framing's five points."""
    pts = np.asarray(points, dtype=np.float64)
    return np.stack([pts[0], pts[1], (pts[3] + pts[4]) / 2]).astype(np.float32)


def train_landmarks(specs: Sequence[str], plain: Subset) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks of each image of `plain` (the engine's unaugmented training set: a `Subset` of a
    `ConcatDataset` of one cache per spec of `specs`, in order).

    Returns:
        (N, 3, 2) float32 eye and mouth fractions, and (N,) bool: True where they are the
        sample's own (``lm_*`` columns), False where they are its data set's framing template.
    """
    from fermixnet.data.registry import create_dataset, parse_data_spec

    parts = plain.dataset.datasets  # type: ignore[attr-defined]
    if len(parts) != len(specs):
        raise ValueError(f"{len(parts)} training caches for {len(specs)} data.train specs")
    tables, exact = [], []
    for spec, part in zip(specs, parts, strict=True):
        name, root, options = parse_data_spec(spec)
        options = dict(options)
        ds = create_dataset(name, root, options.pop("split", "train"), **options)
        metas = [ds.samples[int(i)].meta for i in part.cached.indices]
        table = landmark_table(metas)
        missing = np.isnan(table).any(axis=(1, 2))
        table[missing] = _template(ds.framing.points())
        tables.append(table)
        exact.append(~missing)
    index = np.asarray(plain.indices, dtype=np.int64)
    return np.concatenate(tables)[index], np.concatenate(exact)[index]


def draw_occluder(
    image: np.ndarray, landmarks: np.ndarray, families: Sequence[str], rng: np.random.Generator
) -> tuple[np.ndarray, str, str]:
    """One occluder of a family drawn uniformly from `families`, as one of its types.

    Args:
        image: (H, W, 3) uint8 face.
        landmarks: (3, 2) eyes and mouth as fractions of the image side.
        families: family names (checked by `resolve_families`).
        rng: every random choice.

    Returns:
        (occluded image, family, occlusion type).
    """
    family = families[int(rng.integers(len(families)))]
    kinds = FAMILIES[family]
    kind = kinds[int(rng.integers(len(kinds)))]
    h, w = image.shape[:2]
    lm = Landmarks(*((float(x) * w, float(y) * h) for x, y in landmarks))
    return occlude(image, kind, rng, lm, occluder=family).image, family, kind


class OccludedTrainSet(Subset):
    """Training images with an occluder drawn on a share `p` of them, then `transform`.

    A `Subset` of the plain images' dataset (so tools that walk a run's data sets find its
    caches), indexed like `plain`.

    Args:
        plain: `Subset` of `(uint8 (3, H, W) tensor, label)` without augmentation.
        landmarks: (len(plain), 3, 2) eye and mouth fractions (`train_landmarks`).
        exact: (len(plain),) True where the landmarks are the face's own; elsewhere (a framing
            template) each draw jitters them by up to 2.5 % of the side.
        p: probability that a sample gets an occluder.
        families: occluder families to draw (`resolve_families`).
        transform: the recipe's per-sample transform, applied after the occluder (or None).
        points: (len(plain), 5, 2) cached landmarks in pixels (`CachedImages.landmarks`) for a
            mixer that reads them: items are then `(image, label, points)` with the points
            moved by `transform` (which then takes and returns both). None: `(image, label)`.
    """

    def __init__(self, plain: Subset, landmarks: np.ndarray, exact: np.ndarray, p: float,
                 families: Sequence[str], transform: Callable[..., Any] | None = None,
                 *, points: torch.Tensor | None = None) -> None:
        super().__init__(plain.dataset, plain.indices)
        if not len(landmarks) == len(exact) == len(plain):
            raise ValueError(f"{len(landmarks)} landmark rows for {len(plain)} images")
        self.landmarks, self.exact, self.p = landmarks, exact, float(p)
        self.families = resolve_families(families)
        self.transform, self.points = transform, points
        self.stream_seed = 0

    def set_seed(self, stream_seed: int) -> None:
        """Seed of this epoch's draws (the trainer's occluder stream)."""
        self.stream_seed = int(stream_seed)

    def __getitem__(self, index: int) -> tuple:  # type: ignore[override]
        image, label = self.dataset[self.indices[index]]
        rng = np.random.default_rng([self.stream_seed, int(index)])
        if self.p > 0 and rng.random() < self.p:
            lm = self.landmarks[index]
            if not self.exact[index]:
                lm = lm + rng.uniform(-0.025, 0.025, size=(3, 2)).astype(np.float32)
            hwc = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
            drawn, _, _ = draw_occluder(hwc, lm, self.families, rng)
            image = torch.from_numpy(drawn).permute(2, 0, 1)
        if self.points is not None:  # an occluder hides a part of the face, it does not move it
            points = self.points[index]
            if self.transform is not None:
                image, points = self.transform(image, points)
            return image, label, points
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def __getitems__(self, indices: Sequence[int]) -> list[tuple]:
        return [self[i] for i in indices]
