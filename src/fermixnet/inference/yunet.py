"""YuNet (libfacedetection) face detection through the ``yuface`` wheel: boxes and five landmarks.

``yuface`` (BSD-3-Clause, https://github.com/ShiqiYu/libfacedetection.pip) compiles
libfacedetection's YuNet CNN, weights included, into a small wheel (~0.5 MB, no model file to
fetch, no OpenCV). It returns, per face, a confidence 0-100, an ``(x, y, w, h)`` box and five
landmarks already in fermixnet's order: eye on the image's left, eye on the image's right, nose
tip, mouth corner on the image's left, mouth corner on the image's right. Its wheels exist for
CPython 3.10 and 3.11 on Linux x86_64 (and 3.11 on Windows); ``auto`` falls back to dlib or
Haar elsewhere.

The network runs on a copy of the image shrunk to ``max_side`` (320 px by default), and its
boxes and landmarks are mapped back to the input's pixels. In 640x480 frames it then finds faces
of ~50 px and more; ``max_side=640`` finds ~32 px faces (docs/inference.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from fermixnet.inference.detection import Face, check_image

YUNET_INSTALL = (
    "pip install 'fermixnet[faces]' (the yuface wheel: CPython 3.10-3.11 on Linux x86_64, "
    "3.11 on Windows)"
)


def _openmp_runtimes(package_dir: Path) -> list[ctypes.CDLL]:
    """The OpenMP runtimes libfacedetection may call: the one bundled in the yuface wheel, and
    the process's global one. torch loads its libgomp into the global scope, and once it has,
    libfacedetection's OpenMP calls bind to torch's runtime, not its own."""
    found = []
    libs = sorted((package_dir.parent / "yuface.libs").glob("libgomp*.so*"))
    for lib in [*libs[:1], None]:
        try:
            rt = ctypes.CDLL(None if lib is None else str(lib))
            rt.omp_get_max_threads, rt.omp_set_num_threads  # noqa: B018 (both must exist)
        except (OSError, AttributeError, TypeError):
            continue
        found.append(rt)
    return found


@contextlib.contextmanager
def _omp_threads(runtimes: list[ctypes.CDLL], threads: int) -> Iterator[None]:
    """OpenMP's thread count set to ``threads`` for the calling thread, restored afterwards
    (torch reads the same setting for its own intra-op threads)."""
    before = [rt.omp_get_max_threads() for rt in runtimes]
    for rt in runtimes:
        rt.omp_set_num_threads(threads)
    try:
        yield
    finally:
        for rt, n in zip(runtimes, before, strict=True):
            rt.omp_set_num_threads(n)


class YuNetDetector:
    """libfacedetection's YuNet: fast CNN boxes and five landmarks, weights inside its wheel.

    Args:
        max_side: the image is shrunk so that its longer side is at most this many pixels before
            detection (never enlarged); smaller is faster and misses more small faces.
        min_score: detections with a lower confidence (0-1) are dropped.
        threads: OpenMP threads of the detector during a call (Linux; restored afterwards). One
            by default: the network is small at 320 px, and OpenMP's spinning threads made it
            ~10x slower in CPU time on a loaded 2-core machine (benchmarks/detector_bench.py).

    Raises:
        ValueError: ``max_side``, ``min_score`` or ``threads`` out of range.
    """

    name = "yunet"

    def __init__(self, max_side: int = 320, min_score: float = 0.5, threads: int = 1) -> None:
        import yuface

        if int(max_side) < 32:
            raise ValueError(f"yunet max_side must be >= 32 pixels, got {max_side}")
        if not 0.0 <= float(min_score) < 1.0:
            raise ValueError(f"yunet min_score must be in [0, 1), got {min_score}")
        if int(threads) < 1:
            raise ValueError(f"yunet threads must be >= 1, got {threads}")
        self.max_side, self.min_score, self.threads = int(max_side), float(min_score), int(threads)
        self._detect = yuface.detect
        spec = importlib.util.find_spec("yuface")
        origin = spec.origin if spec is not None else None
        self._omp = _openmp_runtimes(Path(origin).parent) if origin else []

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (H, W, 3) uint8 RGB, best first.

        Raises:
            ValueError: ``image`` is not a non-empty (H, W, 3) uint8 array.
        """
        image = check_image(image, "yunet detector")
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = image
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
            scale_xy = np.array([size[0] / w, size[1] / h])
        else:
            scale_xy = np.ones(2)
        # YuNet was trained on OpenCV's BGR order.
        with _omp_threads(self._omp, self.threads):
            confs, boxes, marks = self._detect(np.ascontiguousarray(small[:, :, ::-1]),
                                               conf=self.min_score)
        faces = []
        for conf, box, lm in zip(confs, boxes, marks, strict=True):
            x, y, bw, bh = np.asarray(box, dtype=np.float64)  # int16 in the working image
            x0, y0 = np.array([x, y]) / scale_xy
            x1, y1 = np.array([x + bw, y + bh]) / scale_xy
            # Landmarks are pixel indices: a pixel's centre maps to the centre of its footprint.
            pts = (np.asarray(lm, dtype=np.float64).reshape(5, 2) + 0.5) / scale_xy - 0.5
            faces.append(Face((float(x0), float(y0), float(x1), float(y1)), pts,
                              float(conf) / 100.0))
        return sorted(faces, key=lambda f: -f.score)
