"""Five landmarks from a face detector, for cached samples whose data set gives none.

A spec's ``detect_landmarks=<detector>`` option (every adapter takes it, like ``framing=``)
asks the cache to run that detector once, while it decodes the images, on each sample without
usable landmarks of its own (FER2013, FERPlus, folders, manifests without ``lm_*`` columns).
Each such image is enlarged so that its shorter side is at least `MIN_SIDE` pixels (FER2013's
48 px faces are too small for a detector), the detector's one face is taken (a crop holds one
face: the largest box, then the most central one; faces without landmarks do not count), its
points are mapped back to the image's pixels and checked like a data set's own
(`fermixnet.augment.landmarks.landmark_problem`). Usable points are recorded with source 2
(``detected``); otherwise the sample keeps the framing's template and the failure is counted
and named, never fatal.

Why a spec option and not a ``data.*`` config field: whether a data set needs a detector is a
property of that data set, like its framing (joint RAF-DB + FER2013 training detects only
FER2013's faces), and a spec reaches every command that builds or checks a cache (`train`,
`eval`, `data cache`, `data check`) without a flag of its own in each.

The data layer may not import `fermixnet.inference` (docs/architecture.md, layering), so whoever
builds a cache passes the detector factory: ``build_cache(ds, size,
detectors=fermixnet.inference.faces.landmark_detector)`` (the CLI and the engine do). The factory
is called once per detector and build (once per worker thread for detectors that are not
``concurrent``), before the first image is decoded, so a bad name or a missing package fails at
once. The cache key records each detector's name and settings (`detector_settings`), `MIN_SIDE`
and `VERSION`: another detector, or other settings, give another cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from fermixnet.augment.landmarks import landmark_problem
from fermixnet.data.imageio import resize_rgb
from fermixnet.data.landmarks import scale_points

MIN_SIDE = 160  # YuNet found 150 of 150 real FER2013 faces at 160 px (issue 20), few at 48
RESIZE = "bicubic"
VERSION = 1  # of this procedure: bump when a change here moves detected points
# Attributes that say how a detector runs, not what it finds: not part of the cache key.
_RUNTIME = ("concurrent", "threads")


class PointDetector(Protocol):
    """What the cache needs of a face detector (`fermixnet.inference.faces.FaceDetector`)."""

    name: str

    def detect(self, image: np.ndarray) -> Sequence[Any]:
        """Faces in an (H, W, 3) uint8 RGB image, each with ``box`` (x0, y0, x1, y1) and
        ``landmarks`` ((5, 2) pixels, or None)."""
        ...


DetectorFactory = Callable[[str], PointDetector]


def detector_settings(detector: PointDetector) -> dict[str, Any]:
    """The detector's name and its public scalar settings (e.g. YuNet's ``max_side`` and
    ``min_score``): what the cache key records of it."""
    settings = {k: v for k, v in sorted(vars(detector).items()) if not k.startswith("_")
                and k not in _RUNTIME and isinstance(v, (bool, int, float, str))}  # fmt: skip
    return {"name": str(detector.name), **settings}


def pick_face(faces: Iterable[Any], height: int, width: int) -> Any | None:
    """The one face of a crop: the largest box with landmarks, then the most central; None
    when no face has landmarks."""

    def rank(face: Any) -> tuple[float, float]:
        x0, y0, x1, y1 = face.box
        off = np.hypot((x0 + x1) / 2 - width / 2, (y0 + y1) / 2 - height / 2)
        return (x1 - x0) * (y1 - y0), -off

    usable = [f for f in faces if f.landmarks is not None]
    return max(usable, key=rank) if usable else None


def enlarged(image: np.ndarray, min_side: int = MIN_SIDE) -> np.ndarray:
    """`image` resized (`RESIZE`) so that its shorter side is at least `min_side`; unchanged
    when it already is."""
    h, w = image.shape[:2]
    scale = min_side / min(h, w)
    if scale <= 1.0:
        return image
    return resize_rgb(image, (max(min_side, round(h * scale)), max(min_side, round(w * scale))),
                      RESIZE)  # fmt: skip


class LandmarkDetection:
    """The detectors one cache build (or one `data check` split) runs, by name.

    Callable as ``detection(name, image) -> (points (5, 2) in `image`'s pixels or None, why
    not)``, from several threads at once.

    Args:
        names: detector names the samples ask for (``detect_landmarks=``).
        factory: builds a detector from its name (`DetectorFactory`).

    Attributes:
        settings: name -> what the cache key records (`detector_settings`, `MIN_SIDE`,
            `VERSION`).

    Raises:
        ValueError: no `factory`, or the factory refused a name (unknown, not installed).
    """

    def __init__(self, names: Iterable[str], factory: DetectorFactory | None) -> None:
        names = sorted(set(names))
        if factory is None:
            raise ValueError(
                f"detect_landmarks={names[0]}: pass the detector factory, e.g. build_cache(..., "
                "detectors=fermixnet.inference.faces.landmark_detector) (the CLI and train do)"
            )
        self._factory = factory
        self._first: dict[str, PointDetector] = {}
        self._local = threading.local()
        self.settings: dict[str, dict[str, Any]] = {}
        for name in names:
            try:
                detector = factory(name)
            except ValueError as err:
                raise ValueError(f"detect_landmarks={name}: {err}") from None
            self._first[name] = detector
            self.settings[name] = {**detector_settings(detector), "min_side": MIN_SIDE,
                                   "resize": RESIZE, "version": VERSION}  # fmt: skip

    def _detector(self, name: str) -> PointDetector:
        first = self._first[name]
        if getattr(first, "concurrent", False):  # one instance serves every thread
            return first
        own = self._local.__dict__.setdefault("detectors", {})
        if name not in own:
            own[name] = self._factory(name)
        return own[name]

    def __call__(self, name: str, image: np.ndarray) -> tuple[np.ndarray | None, str]:
        """Five landmarks of the face in `image` (H, W, 3) uint8, in its pixels, or None and
        why (no face found, or its points failed `landmark_problem`)."""
        h, w = image.shape[:2]
        big = enlarged(image)
        face = pick_face(self._detector(name).detect(big), *big.shape[:2])
        if face is None:
            return None, f"{name} found no face"
        points = scale_points(np.asarray(face.landmarks, np.float64), big.shape[:2], (h, w))
        problem = landmark_problem(points, h, w)
        return (None, f"{name}'s points refused: {problem}") if problem else (points, "")


def sample_detectors(dataset) -> list[str | None]:
    """The detector each sample of a `FERDataset` asks for (`FERDataset.detect_with`)."""
    return [dataset.detect_with(i) for i in range(len(dataset))]


def detection_for(dataset, factory: DetectorFactory | None) -> LandmarkDetection | None:
    """The `LandmarkDetection` of `dataset`'s samples, or None when none asks for one."""
    names = {n for n in sample_detectors(dataset) if n}
    return LandmarkDetection(names, factory) if names else None
