"""YuNet run by ONNX Runtime (fermixnet.inference.yunet_onnx) against the yuface wheel's library."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scene_helpers import background, photo_scene, scene_with_faces

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("yuface", "onnx", "onnxruntime")),
    reason="needs yuface (no wheel for this Python/platform), onnx and onnxruntime")


@pytest.fixture(scope="module")
def package() -> Path:
    return Path(importlib.util.find_spec("yuface").origin).parent


@pytest.fixture(scope="module")
def library(package):
    from fermixnet.inference.yunet import _library_detect

    return _library_detect(package)


def _shrink(img: np.ndarray, side: int = 320) -> np.ndarray:
    """``img`` shrunk to at most ``side`` pixels, as YuNetDetector does."""
    h, w = img.shape[:2]
    s = min(1.0, side / max(h, w))
    size = (round(w * s), round(h * s))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR))


def _scenes() -> list[np.ndarray]:
    """BGR working images: drawn faces (1-3, 48-110 px, occluded or not), the photo, an odd
    width and height, a 320x240 frame, no face."""
    out = [scene_with_faces(s, n, size, face, occ)[0] for s, n, size, face, occ in [
        (0, 1, 320, 110, None), (1, 2, 320, 96, "sunglasses"), (2, 3, 320, 64, None),
        (3, 2, 288, 48, "mask"), (4, 1, 256, 80, None)]]
    out += [_shrink(photo_scene(s)[0]) for s in range(3)]  # 320 x 240 (stride 16: 15 rows)
    out.append(_shrink(photo_scene(5)[0])[3:240, 5:306])  # 237 x 301
    out.append(background(200, 280, seed=7))
    return [np.ascontiguousarray(img[:, :, ::-1]) for img in out]


def _differences(want, got) -> dict[str, int]:
    """The largest |difference| of scores, boxes and landmarks (same face count required)."""
    assert len(got[0]) == len(want[0]), (want, got)
    if not len(want[0]):
        return {"score": 0, "box": 0, "landmarks": 0}
    return {name: int(np.abs(w.astype(int) - g.astype(int)).max())
            for name, w, g in zip(("score", "box", "landmarks"), want, got, strict=True)}


def test_onnx_runtime_finds_the_librarys_faces(package, library):
    from fermixnet.inference.yunet_onnx import onnx_detect

    detect = onnx_detect(package)
    assert detect is not None and onnx_detect(package) is not None
    faces = 0
    for bgr in _scenes():
        want = library(bgr, 0.0)  # every face the library keeps (score >= 20)
        got = detect(bgr, 0.0)
        assert all(g.dtype == np.int16 for g in got)
        assert max(_differences(want, got).values()) <= 1, (bgr.shape, want, got)
        faces += len(want[0])
        strong = detect(bgr, 0.5)
        assert np.array_equal(strong[0], got[0][got[0] > 50])
    assert faces >= 12
    assert len(detect(_scenes()[-1], 0.0)[0]) == 0  # no face


def test_onnx_detect_serves_threads_at_once(package):
    from fermixnet.inference.yunet_onnx import onnx_detect

    detect = onnx_detect(package)
    scenes = _scenes()[:6] * 3
    alone = [detect(bgr, 0.5) for bgr in scenes]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda bgr: detect(bgr, 0.5), scenes))
    for a, b in zip(alone, together, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("layer", [0, 3, 4, 24])
def test_a_wrong_weight_layout_is_caught(package, library, layer):
    """The comparison above fails when a layer's weights are laid out wrongly: the first
    convolution's taps, a 1x1 layer's (out, in) or a depthwise layer's (9, C) transposed."""
    from fermixnet.inference.yunet_onnx import make_session, read_layers, session_detect

    lib_path = package / "libfacedetection.so"
    layers = read_layers(lib_path)
    w, b = layers[layer]
    if w.shape[-1] == 1:  # 1x1: (out, in) as (in, out)
        w = w.reshape(w.shape[1], w.shape[0]).T.reshape(w.shape)
    elif w.shape[1] == 1:  # depthwise: (9, C) read as (C, 9)
        w = w.reshape(9, -1).T.reshape(w.shape)
    else:  # the first convolution: kernel rows and columns swapped
        w = w.transpose(0, 1, 3, 2)
    layers[layer] = (np.ascontiguousarray(w), b)
    wrong = session_detect(make_session(lib_path, layers))
    scenes = _scenes()
    with pytest.raises(AssertionError):
        for bgr in scenes:
            assert max(_differences(library(bgr, 0.0), wrong(bgr, 0.0)).values()) <= 1


def test_yunet_ort_bench_smoke_times_both_and_compares_their_faces(tmp_path):
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "yunet_ort.json"
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "yunet_ort_bench.py"),
                           "--smoke", "--out", str(out)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(root / "src")), timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())["results"]
    for size in ("320x320", "320x240"):
        assert res[size]["same_faces"] is True
        assert res[size]["library"]["wall_ms"] > 0 and res[size]["onnxruntime"]["cpu_ms"] > 0
