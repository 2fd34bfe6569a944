"""The YuNet backend (boxes and landmarks mapped back from its working resolution), what ``auto``
picks, and every detector's check of its input."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from PIL import Image

from fermixnet.inference import create_detector, list_detectors
from scene_helpers import background, box_iou, finds_pasted_faces, photo_scene, scene_with_faces

needs_yuface = pytest.mark.skipif(importlib.util.find_spec("yuface") is None,
                                  reason="needs yuface (no wheel for this Python/platform)")


def _check_order(marks: np.ndarray, box: tuple[float, ...]) -> None:
    """fermixnet's order: image-left eye, image-right eye, nose tip, mouth left, mouth right."""
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = marks
    assert lx < nx < rx and mlx < mrx
    assert max(ly, ry) < ny < min(mly, mry)
    x0, y0, x1, y1 = box
    assert np.all((marks >= (x0, y0)) & (marks <= (x1, y1)))


@needs_yuface
def test_yunet_finds_drawn_faces_and_a_photo_with_landmarks_in_order():
    det = create_detector("yunet")
    assert det.name == "yunet" and det.max_side == 320
    for seed in range(3):
        for f in finds_pasted_faces(det.detect, seed):
            _check_order(f.landmarks, f.box)
            assert 0.5 <= f.score <= 1.0
    img, box = photo_scene(0)
    (face,) = det.detect(img)
    assert box_iou(face.box, box) > 0.4
    _check_order(face.landmarks, face.box)
    # Mirrored, the order still starts with the image's left eye.
    (flip,) = det.detect(np.ascontiguousarray(img[:, ::-1]))
    w = img.shape[1]
    mirrored = np.column_stack([w - 1 - face.landmarks[:, 0], face.landmarks[:, 1]])
    _check_order(flip.landmarks, flip.box)
    side = face.box[2] - face.box[0]
    # YuNet is not mirror-symmetric: its points move by ~4 % of the face (measured 3.8-4.4 px
    # of 102); a wrong order would put them an eye distance (~45 %) away.
    assert np.abs(flip.landmarks - mirrored[[1, 0, 2, 4, 3]]).mean() < 0.06 * side
    assert det.detect(background(300, 400, seed=7)) == []


@needs_yuface
def test_yunet_maps_boxes_and_landmarks_back_from_its_working_resolution():
    det = create_detector("yunet")
    seen = []

    def fake(bgr: np.ndarray, conf: float):  # yuface's API: confs, (x, y, w, h), 10 coordinates
        seen.append(bgr.shape)
        return (np.array([88], np.int16), np.array([[40, 20, 100, 120]], np.int16),
                np.array([[60, 60, 120, 60, 90, 90, 70, 110, 110, 110]], np.int16))

    det._detect = fake
    (face,) = det.detect(np.zeros((480, 960, 3), np.uint8))  # shrunk to 320x160: x3
    assert seen == [(160, 320, 3)]
    assert face.box == (120.0, 60.0, 420.0, 420.0) and face.score == pytest.approx(0.88)
    # A pixel index i at 320 px covers 3i..3i+2 at 960 px: its centre is 3i + 1.
    np.testing.assert_allclose(face.landmarks[0], (181, 181))
    seen.clear()
    det.detect(np.zeros((200, 300, 3), np.uint8))  # smaller than max_side: never enlarged
    assert seen == [(200, 300, 3)]
    # End to end: a face found at 320 px and in the same scene enlarged 3x agree.
    img, (box,) = scene_with_faces(4, n_faces=1, size=320, face=128)
    (small,) = create_detector("yunet").detect(img)  # 320 px: run as is
    assert box_iou(small.box, box) > 0.4
    big = np.asarray(Image.fromarray(img).resize((960, 960), Image.Resampling.BICUBIC))
    (large,) = create_detector("yunet").detect(big)
    assert box_iou(np.array(large.box) / 3, small.box) > 0.85
    # (drawn faces give YuNet landmarks that move by a few pixels when the image is resampled)
    assert np.abs((large.landmarks - 1) / 3 - small.landmarks).max() < 0.08 * 128
    for bad in ({"max_side": 8}, {"min_score": 1.5}, {"threads": 0}, {"runtime": "tflite"}):
        with pytest.raises(ValueError, match="yunet"):
            create_detector("yunet", **bad)


@needs_yuface
def test_yunet_working_copy_is_bgr_at_its_size_with_or_without_opencv(monkeypatch):
    from fermixnet.inference import yunet
    from fermixnet.inference.yunet import _working_copy

    low = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(low).resize((640, 480), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(_working_copy(img, (640, 480)), img[:, :, ::-1])
    half = _working_copy(img, (320, 240))  # OpenCV: a 2x shrink averages each 2x2 block
    blocks = img.reshape(240, 2, 320, 2, 3).mean((1, 3))[:, :, ::-1]
    assert half.flags.c_contiguous and np.abs(half - blocks).max() <= 1
    odd = _working_copy(img, (400, 300))  # less than 2x smaller: bilinear
    import cv2  # the test extra installs it: the path taken above is OpenCV's

    for got, size, mode in ((half, (320, 240), cv2.INTER_AREA),
                            (odd, (400, 300), cv2.INTER_LINEAR)):
        np.testing.assert_array_equal(got, cv2.resize(img, size, interpolation=mode)[:, :, ::-1])
    monkeypatch.setattr(yunet, "_opencv", lambda: None)  # without OpenCV: Pillow
    for size, with_cv in (((320, 240), half), ((400, 300), odd)):
        pil = _working_copy(img, size)
        assert pil.shape == with_cv.shape == (size[1], size[0], 3) and pil.flags.c_contiguous
        assert np.abs(pil.astype(int) - with_cv).mean() < 2  # the same picture, both BGR


@needs_yuface
def test_yunet_runs_without_the_gil_with_the_bindings_answers():
    from concurrent.futures import ThreadPoolExecutor

    import yuface

    det = create_detector("yunet")
    library = create_detector("yunet", runtime="library")  # libfacedetection.so, through ctypes
    assert det.runtime == "onnxruntime" and library.runtime == "library"
    assert det.concurrent and library.concurrent
    scenes = [scene_with_faces(seed, n_faces=2, size=384, face=96)[0] for seed in range(4)]
    scenes += [photo_scene(0)[0], background(300, 400, seed=7)]
    for img in scenes:
        bgr = np.ascontiguousarray(img[:, :, ::-1])
        want = yuface.detect(bgr, conf=0.5)
        for runtime in (det, library):
            for got, expected in zip(runtime._detect(bgr, 0.5), want, strict=True):
                np.testing.assert_array_equal(got, expected)
    # One detector, four threads at once: every image's faces as when detected alone.
    alone = [det.detect(img) for img in scenes * 3]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(det.detect, scenes * 3))
    assert [[(f.box, f.score) for f in faces] for faces in together] == \
        [[(f.box, f.score) for f in faces] for faces in alone]
    assert sum(map(len, alone)) == 3 * (4 * 2 + 1)


@needs_yuface
def test_yunet_runs_its_library_where_onnxruntime_is_missing(monkeypatch):
    from fermixnet.inference import yunet_onnx

    monkeypatch.setattr(yunet_onnx, "_sessions", {})  # no session built earlier in the process
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    det = create_detector("yunet")
    assert det.runtime == "library" and det.concurrent
    img, (box,) = scene_with_faces(4, n_faces=1, size=320, face=128)
    (face,) = det.detect(img)
    assert box_iou(face.box, box) > 0.4
    with pytest.raises(ValueError, match="runtime 'onnxruntime' needs onnx and onnxruntime"):
        create_detector("yunet", runtime="onnxruntime")


@needs_yuface
def test_auto_picks_yunet_and_falls_back_without_yuface(monkeypatch):
    assert list_detectors()["yunet"] is True
    assert create_detector("auto").name == "yunet"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "yuface" else real(name, *a))
    assert list_detectors()["yunet"] is False
    assert create_detector("auto").name in {"mediapipe", "dlib", "haar"}
    with pytest.raises(ValueError, match=r"yunet needs .*yuface.*fermixnet\[faces\]"):
        create_detector("yunet")



@needs_yuface
def test_auto_skips_a_detector_that_fails_to_start_for_photos_and_for_crops(monkeypatch):
    from fermixnet.inference import faces

    def broken(**options):
        raise OSError("libfacedetection.so: cannot open shared object file")

    monkeypatch.setitem(faces._DETECTORS, "yunet", broken)
    for make in (faces.create_detector, faces.landmark_detector):
        with pytest.warns(RuntimeWarning, match="'yunet' is installed but failed to start"):
            det = make("auto")
        assert det.name in {"mediapipe", "dlib", "haar"}
    with pytest.raises(OSError, match="libfacedetection"):  # asked for by name: no fallback
        faces.landmark_detector("yunet")

BAD_IMAGES = [
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((10, 10, 3), np.float32), "dtype uint8"),
    (np.zeros((10, 10), np.uint8), r"shape \(H, W, 3\)"),
    (np.zeros((10, 10, 4), np.uint8), r"shape \(H, W, 3\)"),
    ([[0, 0, 0]], "numpy array, got list"),
]


@pytest.mark.parametrize("name", ["yunet", "haar", "dlib", "aligned"])
@pytest.mark.parametrize(("image", "message"), BAD_IMAGES)
def test_detectors_reject_empty_and_wrong_dtype_images(name, image, message):
    if not list_detectors()[name]:
        pytest.skip(f"{name} is not installed here")
    det = create_detector(name)
    with pytest.raises(ValueError, match=f"{name} detector: .*{message}"):
        det.detect(image)


@needs_yuface
def test_yunet_runs_one_thread_and_leaves_torchs_threads_as_they_were():
    # torch's libgomp, once loaded, is the OpenMP runtime libfacedetection calls: the detector
    # sets one thread for its call and must restore torch's setting afterwards.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        img, _ = scene_with_faces(1, n_faces=1, size=320, face=96)
        assert len(create_detector("yunet", threads=1).detect(img)) == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@needs_yuface
def test_predictor_with_the_default_detector_finds_and_classifies_faces(checkpoint):
    from fermixnet.inference import Predictor

    pred = Predictor.from_checkpoint(checkpoint)  # detector "auto": yunet
    assert pred.detector.name == "yunet"
    for face in finds_pasted_faces(lambda img: pred.predict_batch([img])[0].faces, seed=3):
        assert sum(face.probs.values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
@needs_yuface
def test_detector_bench_smoke_writes_rates_speed_and_agreement(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    out = tmp_path / "detector.json"
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "detector_bench.py"),
                           "--smoke", "--out", str(out)], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())["results"]
    assert "yunet" in res["detectors"] and "yunet" in res["rates"]["photo"]
    assert res["speed"]["640x480"]["yunet"]["cpu_ms"] > 0
    assert "| scenes | yunet" in proc.stdout
