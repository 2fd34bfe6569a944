"""Where a sample's five landmarks come from, and how they reach the cache's pixel frame.

A data set gives the landmarks it has with `FERDataset.landmarks(index, height, width)`: five
points ``(x, y)`` in pixels of the image `load(index)` returns (order and conventions of
:mod:`fermixnet.augment.landmarks`), or None. `resolve_landmarks` checks them (a point outside
the image, NaN, eyes on one point, mirrored order: counted, named, replaced) and scales them to
the cached size; a sample without usable ones gets the data set's framing template
(`fermixnet.framing`). Each cached sample records where its points came from:

====  ==========  ===============================================================
code  source      meaning
====  ==========  ===============================================================
0     template    the framing's template points (no face-specific landmarks)
1     real        annotated in the data set, or known exactly (synthetic faces)
2     detected    a face detector's, run when the cache is built (a spec's
                  ``detect_landmarks=``: `fermixnet.data.landmark_detection`)
====  ==========  ===============================================================

Manifests (and the synthetic generator) carry them as columns ``lm_eye_l_x, lm_eye_l_y, ...,
lm_mouth_r_y``: fractions of the image's width and height (``x = fraction * W - 0.5`` pixels).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fermixnet.augment.landmarks import NAMES, landmark_problem
from fermixnet.framing import Framing

SOURCES: tuple[str, ...] = ("template", "real", "detected")
TEMPLATE, REAL, DETECTED = 0, 1, 2
META_KEYS: tuple[str, ...] = tuple(f"lm_{n}_{c}" for n in NAMES for c in "xy")
# iBUG 300-W 68-point scheme (0-based): eyes 36-41 (image-left) and 42-47, nose tip 30,
# mouth corners 48 and 54; the 5-point reduction RetinaFace/ArcFace tools use.
_EYE_L, _EYE_R, _NOSE, _MOUTH_L, _MOUTH_R = range(36, 42), range(42, 48), 30, 48, 54
# (detector name, decoded image) -> (points in its pixels or None, why not): `LandmarkDetection`
Detect = Callable[[str, np.ndarray], tuple[np.ndarray | None, str]]


def meta_landmarks(meta: Mapping[str, str], height: int, width: int) -> np.ndarray | None:
    """Landmarks in pixels from ``lm_*`` meta fractions; None when the sample has none.

    A partial or unparsable set gives NaN points (refused and counted by `resolve_landmarks`).
    """
    present = [k for k in META_KEYS if str(meta.get(k, "")).strip() != ""]
    if not present:
        return None
    values = []
    for key in META_KEYS:
        try:
            values.append(float(meta.get(key, "nan")))
        except (TypeError, ValueError):
            values.append(float("nan"))
    return np.asarray(values, np.float64).reshape(5, 2) * (width, height) - 0.5


def from_68(points: np.ndarray) -> np.ndarray:
    """Five landmarks from 68 iBUG points `(68, 2)`: eye centres (mean of each eye's six
    points), nose tip, mouth corners."""
    pts = np.asarray(points, np.float64).reshape(68, 2)
    return np.stack([pts[list(_EYE_L)].mean(0), pts[list(_EYE_R)].mean(0), pts[_NOSE],
                     pts[_MOUTH_L], pts[_MOUTH_R]])  # fmt: skip


def parse_points(text: str, count: int) -> np.ndarray:
    """`count` (x, y) points from whitespace-, comma- or semicolon-separated numbers.

    Raises:
        ValueError: not exactly ``2 * count`` numbers.
    """
    tokens = text.replace(",", " ").replace(";", " ").split()
    if len(tokens) != 2 * count:
        raise ValueError(f"expected {2 * count} numbers ({count} x, y points), got {len(tokens)}")
    try:
        return np.asarray([float(t) for t in tokens], np.float64).reshape(count, 2)
    except ValueError:
        raise ValueError(f"expected numbers, got {text.strip()[:60]!r}") from None


def read_points_file(path: Path, count: int = 5) -> np.ndarray:
    """Points of a text file (RAF-DB's ``Annotation/manual/<stem>_manual.txt``: five ``x y``
    lines); NaN points for an unreadable or malformed file (counted by `resolve_landmarks`)."""
    try:
        return parse_points(path.read_text(encoding="utf-8", errors="replace"), count)
    except (OSError, ValueError):
        return np.full((count, 2), np.nan)


def template_landmarks(framing: Framing, height: int, width: int) -> np.ndarray:
    """The framing's template points in pixels of a `height` x `width` image (the convention
    of `inference.align.template_points`)."""
    return framing.points() * (width, height)


def scale_points(points: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    """Points of a ``src`` (H, W) image in pixels of the same image resized to ``dst``."""
    ratio = np.array([dst[1] / src[1], dst[0] / src[0]])
    return (np.asarray(points, np.float64) + 0.5) * ratio - 0.5


class Resolved(NamedTuple):
    """A sample's landmarks in the cache's frame (`resolve_landmarks`)."""

    points: np.ndarray
    """(5, 2) float32 in the cached image's pixels."""
    code: int
    """Their source (`SOURCES`)."""
    problem: str
    """"" or why the data set's own points were refused."""
    missed: str
    """"" or why the detector the sample asked for gave no usable points (template used)."""


def resolve_landmarks(
    dataset,
    index: int,
    shape: tuple[int, int],
    size: tuple[int, int],
    image: np.ndarray | None = None,
    detect: Detect | None = None,
) -> Resolved:
    """Landmarks of sample `index` in the cache's frame, their source code and any problem.

    Args:
        dataset: a `FERDataset`.
        index: the sample.
        shape: (H, W) of the decoded image (`load(index)`).
        size: (H, W) of the cached image.
        image: the decoded image, for `detect`.
        detect: runs the detector the sample asks for (`FERDataset.detect_with`) when the data
            set gives no usable points; None: no detection (the template).

    Returns:
        `Resolved`: template points when the data set's are absent or refused and no detector
        found usable ones.
    """
    raw = dataset.landmarks(index, *shape)
    problem = "" if raw is None else landmark_problem(raw, *shape)
    if raw is not None and not problem:
        code = DETECTED if getattr(dataset, "landmark_source", "real") == "detected" else REAL
        return Resolved(scale_points(raw, shape, size).astype(np.float32), code, "", "")
    name = dataset.detect_with(index) if detect is not None and image is not None else None
    found, missed = detect(name, image) if name else (None, "")
    if found is not None:
        return Resolved(scale_points(found, shape, size).astype(np.float32), DETECTED, problem, "")
    template = template_landmarks(dataset.framing, *size).astype(np.float32)
    return Resolved(template, TEMPLATE, problem, missed)


class LandmarkTable:
    """Landmarks of a cache being built (`data.cache`), and the samples whose points were refused.

    Args:
        n: samples.
        detect: the build's detectors (`LandmarkDetection`), or None.

    Attributes:
        points: (N, 5, 2) float32 in the cache's pixels.
        source: (N,) uint8 codes (`SOURCES`).
        problems: dataset index -> why its own points were refused.
        missed: dataset index -> why its detector gave no usable points.
    """

    def __init__(self, n: int, detect: Detect | None = None) -> None:
        self.points = np.zeros((n, 5, 2), np.float32)
        self.source = np.zeros(n, np.uint8)
        self.problems: dict[int, str] = {}
        self.missed: dict[int, str] = {}
        self.detect = detect

    def put(self, dataset, index: int, image: np.ndarray, size: tuple[int, int]) -> None:
        """Resolve sample `index`'s landmarks (its decoded `image`) into the arrays."""
        found = resolve_landmarks(dataset, index, image.shape[:2], size, image, self.detect)
        self.points[index], self.source[index] = found.points, found.code
        if found.problem:
            self.problems[index] = found.problem
        if found.missed:
            self.missed[index] = found.missed

    def summary(self, dataset, failed: Mapping[int, str], listed: int) -> dict[str, Any]:
        """JSON meta: counts per source over the samples not in `failed`, the number refused,
        and the first `listed` of them as ``"<path>: <reason>"``; with detection also
        ``landmark_misses`` and ``undetected_landmarks``, the same for the detector's misses,
        and ``landmark_detectors`` (name -> settings)."""
        kept = np.setdiff1d(np.arange(len(self.source)), np.fromiter(failed, np.int64))
        counts = {name: int((self.source[kept] == code).sum()) for code, name in
                  enumerate(SOURCES)}  # fmt: skip
        out: dict[str, Any] = {"landmarks": counts}
        tables = [("landmark_problems", "bad_landmarks", self.problems)]
        if self.detect is not None:
            tables.append(("landmark_misses", "undetected_landmarks", self.missed))
            out["landmark_detectors"] = getattr(self.detect, "settings", {})
        for count, names, found in tables:
            first = sorted(found.items())[:listed]
            out[count] = len(found)
            out[names] = [f"{dataset.samples[i].path}: {reason}" for i, reason in first]
        return out
