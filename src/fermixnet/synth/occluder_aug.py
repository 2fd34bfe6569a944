"""Realistic-occluder training: the project's occluders drawn on training faces (`aug.occluders`).

The occluders of `fermixnet.synth.occlude` (masks, sunglasses, hands, phones, scarves, hair, ...)
are grouped into *families* by what they are, whichever face region they cover: ``hand`` is a hand
over the mouth, over one side or over one eye. With probability ``p`` a training face gets one
occluder of a family drawn uniformly from the chosen ones, placed by the five landmarks the cache
carries for the sample (`CachedImages.landmarks`, in the cached image's pixels, as the landmark
mixer reads them): a manifest's ``lm_*`` columns (the generator's exact points), RAF-DB's and
AffectNet's annotations (`fermixnet.data.landmarks`); a sample without its own has the data set's
framing template there, which each draw jitters a little.

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
from torch import Tensor
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
           "occluder_frame", "occluders_by_type", "resolve_families"]


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


def occluder_frame(points: np.ndarray) -> Landmarks:
    """The occluders' face frame from five landmarks (pixels, `fermixnet.augment.landmarks`
    order): the eyes, and the mouth's centre as the corners' midpoint. The drawers place every
    shape from the eyes and the mouth, so the nose tip is not read."""
    p = np.asarray(points, np.float64)
    return Landmarks(tuple(p[0]), tuple(p[1]), tuple((p[3] + p[4]) / 2))


def draw_occluder(
    image: np.ndarray, landmarks: np.ndarray, families: Sequence[str], rng: np.random.Generator
) -> tuple[np.ndarray, str, str]:
    """One occluder of a family drawn uniformly from `families`, as one of its types.

    Args:
        image: (H, W, 3) uint8 face.
        landmarks: (5, 2) the face's landmarks in the image's pixels (`occluder_frame`).
        families: family names (checked by `resolve_families`).
        rng: every random choice.

    Returns:
        (occluded image, family, occlusion type).
    """
    family = families[int(rng.integers(len(families)))]
    kinds = FAMILIES[family]
    kind = kinds[int(rng.integers(len(kinds)))]
    return occlude(image, kind, rng, occluder_frame(landmarks), occluder=family).image, family, kind


class OccludedTrainSet(Subset):
    """Training images with an occluder drawn on a share `p` of them, then `transform`.

    A `Subset` of the plain images' dataset (so tools that walk a run's data sets find its
    caches), indexed like `plain`.

    Args:
        plain: `Subset` of `(uint8 (3, H, W) tensor, label)` without augmentation.
        landmarks: (len(plain), 5, 2) the cached landmarks in the cached images' pixels
            (`CachedImages.landmarks(..., face_only=False)`: template rows included).
        exact: (len(plain),) True where the landmarks are the face's own; elsewhere (a framing
            template) each draw jitters them by up to 2.5 % of the side.
        p: probability that a sample gets an occluder.
        families: occluder families to draw (`resolve_families`).
        transform: the recipe's per-sample transform, applied after the occluder (or None).
        carry_landmarks: for a mixer that reads landmarks: items are `(image, label, points)`,
            the sample's landmarks (NaN where not `exact`, as the mixer expects) moved by
            `transform` (which then takes and returns both). False: `(image, label)`.
    """

    def __init__(self, plain: Subset, landmarks: Tensor, exact: Tensor, p: float,
                 families: Sequence[str], transform: Callable[..., Any] | None = None,
                 *, carry_landmarks: bool = False) -> None:
        super().__init__(plain.dataset, plain.indices)
        if landmarks.shape != (len(plain), 5, 2) or exact.shape != (len(plain),):
            raise ValueError(f"expected landmarks ({len(plain)}, 5, 2) and exact "
                             f"({len(plain)},) for {len(plain)} images, got "
                             f"{tuple(landmarks.shape)} and {tuple(exact.shape)}")
        self.landmarks, self.exact, self.p = landmarks.float(), exact.bool(), float(p)
        self.families = resolve_families(families)
        self.transform, self.carry_landmarks = transform, carry_landmarks
        self.stream_seed = 0

    def set_seed(self, stream_seed: int) -> None:
        """Seed of this epoch's draws (the trainer's occluder stream)."""
        self.stream_seed = int(stream_seed)

    def __getitem__(self, index: int) -> tuple:  # type: ignore[override]
        image, label = self.dataset[self.indices[index]]
        rng = np.random.default_rng([self.stream_seed, int(index)])
        if self.p > 0 and rng.random() < self.p:
            lm = self.landmarks[index].numpy()
            if not self.exact[index]:
                side = np.array(image.shape[:0:-1], np.float32)  # (W, H)
                lm = lm + rng.uniform(-0.025, 0.025, size=(5, 2)).astype(np.float32) * side
            hwc = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
            drawn, _, _ = draw_occluder(hwc, lm, self.families, rng)
            image = torch.from_numpy(drawn).permute(2, 0, 1)
        if self.carry_landmarks:  # an occluder hides a part of the face, it does not move it
            points = self.landmarks[index]
            if not self.exact[index]:
                points = torch.full_like(points, float("nan"))
            if self.transform is not None:
                image, points = self.transform(image, points)
            return image, label, points
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def __getitems__(self, indices: Sequence[int]) -> list[tuple]:
        return [self[i] for i in indices]
