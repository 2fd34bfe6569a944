"""YuNet (libfacedetection) face detection through the ``yuface`` wheel: boxes and five landmarks.

``yuface`` (BSD-3-Clause, https://github.com/ShiqiYu/libfacedetection.pip) compiles
libfacedetection's YuNet CNN, weights included, into a small wheel (~0.5 MB, no model file to
fetch, no OpenCV). It returns, per face, a confidence 0-100, an ``(x, y, w, h)`` box and five
landmarks already in fermixnet's order: eye on the image's left, eye on the image's right, nose
tip, mouth corner on the image's left, mouth corner on the image's right. Its wheels exist for
CPython 3.10 and 3.11 on Linux x86_64 (and 3.11 on Windows); ``auto`` falls back to dlib or
Haar elsewhere.

The network runs on a copy of the image shrunk to ``max_side`` (320 px by default: YuNet is
trained for such inputs; it still finds faces of ~12 px there, i.e. ~24 px in a 640x480 frame),
and its boxes and landmarks are mapped back to the input's pixels.
"""

from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from fermixnet.inference.detection import Face, check_image

YUNET_INSTALL = (
    "pip install 'fermixnet[faces]' (the yuface wheel: CPython 3.10-3.11 on Linux x86_64, "
    "3.11 on Windows)"
)


def _openmp(package_dir: Path) -> ctypes.CDLL | None:
    """The OpenMP runtime bundled in the yuface wheel (Linux), to set its thread count."""
    libs = sorted((package_dir.parent / "yuface.libs").glob("libgomp*.so*"))
    try:
        return ctypes.CDLL(str(libs[0])) if libs else None
    except OSError:
        return None


class YuNetDetector:
    """libfacedetection's YuNet: fast CNN boxes and five landmarks, weights inside its wheel.

    Args:
        max_side: the image is shrunk so that its longer side is at most this many pixels before
            detection (never enlarged); smaller is faster and misses more small faces.
        min_score: detections with a lower confidence (0-1) are dropped.
        threads: OpenMP threads of the detector (Linux wheel). One by default: the network is
            small at 320 px, and a second pool of spinning threads slows the classifier's
            (torch's) own threads in the same process, badly so on a loaded machine
            (benchmarks/detector_bench.py).

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
        self._omp = _openmp(Path(origin).parent) if origin else None

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
        if self._omp is not None:  # per calling thread: OpenMP's thread count is thread-local
            self._omp.omp_set_num_threads(self.threads)
        # YuNet was trained on OpenCV's BGR order.
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
