"""Unit tests of fermixnet.inference: alignment, detectors, image reading, predictor, results."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from PIL import Image

from fermixnet.inference import Predictor, create_detector, list_detectors
from fermixnet.inference.align import (
    RAFDB_TEMPLATE,
    align_face,
    apply_similarity,
    estimate_similarity,
    template_points,
    warp_affine,
)
from fermixnet.inference.faces import complete_landmarks
from fermixnet.inference.images import collect_inputs, read_image
from fermixnet.inference.results import ImageResult, results_to_csv, results_to_json
from fermixnet.inference.video import IoUTracker
from scene_helpers import background, box_iou, finds_pasted_faces, scene_with_faces

needs_cv2 = pytest.mark.skipif(importlib.util.find_spec("cv2") is None, reason="needs OpenCV")


def _similarity(angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


pytestmark = pytest.mark.usefixtures("_tiny_trunk")


# --- alignment --------------------------------------------------------------------------------
@pytest.mark.parametrize("angle,scale,tx,ty", [(0.3, 2.5, 10.0, -4.0), (-1.2, 0.4, 100.0, 7.5)])
def test_estimate_similarity_recovers_a_known_transform(angle, scale, tx, ty):
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    m = _similarity(angle, scale, tx, ty)
    est = estimate_similarity(src, apply_similarity(m, src))
    np.testing.assert_allclose(est, m, atol=1e-9)


def test_estimate_similarity_never_reflects():
    src = RAFDB_TEMPLATE * 100
    mirrored = src * np.array([-1.0, 1.0])
    m = estimate_similarity(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_estimate_similarity_rejects_coincident_points():
    with pytest.raises(ValueError, match="coincide"):
        estimate_similarity(np.ones((5, 2)), np.zeros((5, 2)))


def test_align_face_puts_landmarks_on_the_template():
    """Dots drawn at transformed template points land on the template after alignment."""
    size = 64
    m = _similarity(0.25, 3.0, 40.0, 20.0)
    landmarks = apply_similarity(m, template_points(size))
    image = np.zeros((400, 400, 3), np.uint8)
    for x, y in landmarks:
        image[round(y) - 3 : round(y) + 4, round(x) - 3 : round(x) + 4] = 255
    crop = align_face(image, landmarks, size)
    assert crop.shape == (size, size, 3)
    for x, y in template_points(size):
        assert crop[round(y), round(x)].min() > 200  # centre of each dot
    assert crop[2, 2].max() == 0  # the background stays black


def test_warp_affine_reads_only_the_sampled_part_with_the_same_pixels():
    """The crop equals PIL's transform of the whole frame (pixel centres at index + 0.5), for
    crops inside, across the border of and wholly outside a 640x480 frame."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for _ in range(300):
        m = _similarity(rng.uniform(-np.pi, np.pi), rng.uniform(0.1, 3.0),
                        *rng.uniform(-600, 200, 2))
        size = int(rng.integers(8, 130))
        inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
        half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
        coeffs = tuple((half @ inv @ np.linalg.inv(half))[:2].reshape(-1))
        whole = Image.fromarray(frame).transform((size, size), Image.Transform.AFFINE, coeffs,
                                                 resample=Image.Resampling.BILINEAR)
        np.testing.assert_array_equal(warp_affine(frame, m, size), np.asarray(whole))


def test_complete_landmarks_fills_the_mouth_from_the_template():
    m = _similarity(-0.4, 150.0, 30.0, 60.0)
    full = apply_similarity(m, RAFDB_TEMPLATE)
    out = complete_landmarks(full[:3], (0, 1, 2))
    np.testing.assert_allclose(out, full, atol=1e-9)


# --- detectors ----------------------------------------------------------------------------------
def test_detector_registry_and_errors(monkeypatch):
    assert {"aligned", "haar", "dlib", "mediapipe", "yunet"} <= set(list_detectors())
    with pytest.raises(ValueError, match="unknown --detector"):
        create_detector("nope")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ValueError, match=r"fermixnet\[faces\]"):
        create_detector("dlib")
    with pytest.raises(ValueError, match=r"no face detector is installed.*fermixnet\[faces\]"):
        create_detector("auto")


def test_aligned_detector_is_the_whole_image():
    faces = create_detector("none").detect(np.zeros((30, 40, 3), np.uint8))
    assert len(faces) == 1 and faces[0].box == (0.0, 0.0, 40.0, 30.0)


@needs_cv2
def test_haar_finds_pasted_faces_at_their_positions():
    det = create_detector("haar")
    for seed in range(4):
        for f in finds_pasted_faces(det.detect, seed):
            assert f.landmarks.shape == (5, 2)
    assert det.detect(background(200, 200, seed=7)) == []


def test_dlib_backend_finds_pasted_faces():
    """The faces extra's default backend (dlib-bin and its 5-point model, also in the test
    extra) finds unoccluded drawn faces and gives landmarks in fermixnet's order."""
    det = create_detector("dlib")
    # eyes above the nose, nose above the mouth, image-left eye first
    for f in finds_pasted_faces(det.detect, seed=2):
        (lx, ly), (rx, ry), (_, ny), (_, my), _ = f.landmarks
        assert lx < rx and max(ly, ry) < ny < my


# --- reading images -----------------------------------------------------------------------------
def test_read_image_modes(tmp_path):
    gray = Image.fromarray(np.full((10, 12), 100, np.uint8))
    gray.save(tmp_path / "gray.png")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:4, :, 3] = 255  # top half opaque red, bottom transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((6, 5), 65535 // 2, np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "tiny.png")

    img, scale = read_image(tmp_path / "gray.png")
    assert img.shape == (10, 12, 3) and img.dtype == np.uint8 and (img == 100).all() and scale == 1
    img, _ = read_image(tmp_path / "rgba.png")
    assert tuple(img[0, 0]) == (255, 0, 0) and tuple(img[7, 0]) == (0, 0, 0)
    img, _ = read_image(tmp_path / "deep.png")
    assert img.shape == (6, 5, 3) and abs(int(img[0, 0, 0]) - 128) <= 1
    assert read_image(tmp_path / "tiny.png")[0].shape == (1, 1, 3)


def test_read_image_exif_orientation_and_large(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(arr).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    img, _ = read_image(tmp_path / "rot.jpg")
    assert img.shape == (40, 20, 3)
    assert img[:20].mean() > 200 and img[20:].mean() < 50  # the white half is now on top
    big, scale = read_image(tmp_path / "rot.jpg", max_side=10)
    assert big.shape == (10, 5, 3) and scale == pytest.approx(4.0)


def test_read_image_bad_files(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"bad\.jpg"):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(FileNotFoundError, match="missing"):
        collect_inputs([tmp_path / "missing.png"])


# --- predictor ----------------------------------------------------------------------------------
def test_predictor_aligned_crops_and_schema(checkpoint):
    pred = Predictor.from_checkpoint(checkpoint, detector="aligned")
    crops = [np.full((30, 30, 3), v, np.uint8) for v in (0, 128)] + [np.zeros((50, 40), np.uint8)]
    results = pred.predict_aligned(crops)
    assert len(results) == 3
    for r in results:
        assert set(r.probs) == set(pred.classes) and len(pred.classes) == 7
        assert sum(r.probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert r.label == max(r.probs, key=r.probs.get) and r.score == r.probs[r.label]
    with pytest.raises(ValueError, match=r"shape \(N, 48, 48, 3\)"):
        pred.classify(np.zeros((2, 32, 32, 3), np.uint8))


def test_predictor_batches_agree_with_single_calls(checkpoint):
    pred = Predictor.from_checkpoint(checkpoint, detector="aligned", batch_size=2)
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 255, (5, 48, 48, 3), dtype=np.uint8)
    together = pred.classify(crops)
    alone = np.concatenate([pred.classify(c[None]) for c in crops])
    np.testing.assert_allclose(together, alone, atol=1e-5)


@needs_cv2
def test_predictor_scenes_boxes_and_no_face(checkpoint):
    pred = Predictor.from_checkpoint(checkpoint, detector="haar")
    img, boxes = scene_with_faces(3, n_faces=2, size=384, face=96)
    res, empty = pred.predict_batch([img, background(200, 300, seed=5)])
    assert len(res.faces) == 2 and (res.width, res.height) == (384, 384)
    for true in boxes:
        assert max(box_iou(f.box, true) for f in res.faces) > 0.4
    assert empty.faces == [] and empty.error is None and (empty.width, empty.height) == (300, 200)


@needs_cv2
def test_predictor_reports_boxes_in_original_pixels_of_shrunk_images(checkpoint, tmp_path):
    img, boxes = scene_with_faces(1, n_faces=1, size=192, face=96)
    big = np.asarray(Image.fromarray(img).resize((1536, 1536), Image.Resampling.NEAREST))
    Image.fromarray(big).save(tmp_path / "big.png")
    pred = Predictor.from_checkpoint(checkpoint, detector="haar")
    pred.max_side = 384  # shrink 4x, as a huge photo would be
    res = next(iter(pred.predict_files([tmp_path / "big.png"])))
    assert (res.width, res.height) == (1536, 1536)
    true = tuple(8 * v for v in boxes[0])
    assert max(box_iou(f.box, true) for f in res.faces) > 0.4


def test_predict_files_reports_and_skips_bad_files(checkpoint, tmp_path):
    Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"garbage")
    Image.fromarray(np.zeros((20, 48, 3), np.uint8)).save(tmp_path / "c.png")
    pred = Predictor.from_checkpoint(checkpoint, detector="aligned")
    results = list(pred.predict_files(collect_inputs([tmp_path]), chunk=2))
    assert [r.source.rsplit("/", 1)[-1] for r in results] == ["a.png", "b.png", "c.png"]
    assert results[1].error and "b.png" in results[1].error and results[1].faces == []
    assert len(results[0].faces) == 1 and len(results[2].faces) == 1


# --- results and tracking -----------------------------------------------------------------------
def test_results_json_and_csv(checkpoint):
    pred = Predictor.from_checkpoint(checkpoint, detector="aligned")
    ok = pred.predict(np.zeros((48, 48, 3), np.uint8))
    bad = ImageResult("x.png", 0, 0, error="x.png: not a readable image")
    doc = json.loads(results_to_json([ok, bad]))
    face = doc["results"][0]["faces"][0]
    assert set(face) == {"box", "landmarks", "detector_score", "label", "score", "probs"}
    assert doc["results"][1]["faces"] == [] and "error" in doc["results"][1]
    lines = results_to_csv([ok, bad], pred.classes).splitlines()
    assert len(lines) == 3 and lines[0].startswith("source,frame,time,face")
    assert lines[2].endswith("not a readable image")


def test_iou_tracker_keeps_ids_and_smooths():
    from fermixnet.inference.results import FaceResult

    classes = ("a", "b")

    def frame(x: float, pa: float) -> ImageResult:
        r = ImageResult("v", 100, 100)
        r.faces.append(FaceResult((x, 0, x + 20, 20), None, 1.0, {"a": pa, "b": 1 - pa}, "a", pa))
        return r

    tracker = IoUTracker(smoothing=0.5)
    f1, f2, f3 = frame(0, 1.0), frame(2, 0.0), frame(70, 0.0)
    for f in (f1, f2, f3):
        tracker.update(f, classes)
    assert f1.faces[0].track_id == f2.faces[0].track_id != f3.faces[0].track_id
    assert f2.faces[0].probs["a"] == pytest.approx(0.5)  # 0.5 * 1.0 + 0.5 * 0.0
    assert f2.faces[0].label == "a" or f2.faces[0].label == "b"
    assert f3.faces[0].probs["a"] == pytest.approx(0.0)  # a new track starts unsmoothed


@pytest.mark.cuda
def test_predictor_and_grad_cam_on_cuda(checkpoint):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from fermixnet.explain import branch_cams
    from fermixnet.models.weights import load_checkpoint

    crops = np.random.default_rng(0).integers(0, 255, (3, 48, 48, 3), dtype=np.uint8)
    cpu = Predictor.from_checkpoint(checkpoint, detector="aligned").classify(crops)
    gpu = Predictor.from_checkpoint(checkpoint, device="cuda", detector="aligned").classify(crops)
    np.testing.assert_allclose(gpu, cpu, atol=1e-3)
    model = load_checkpoint(checkpoint, device="cuda")[0]
    cams = branch_cams(model, torch.randn(2, 3, 48, 48, device="cuda"), [0, 1])
    assert cams["high"].device.type == "cuda" and cams["mid"].shape == (2, 48, 48)


def test_auto_skips_a_backend_that_fails_to_start(monkeypatch):
    from fermixnet.inference import faces

    def broken(**_: object) -> None:
        raise TypeError("Descriptors cannot be created directly")

    monkeypatch.setattr(faces, "_AUTO_ORDER", ("dlib", "aligned"))
    monkeypatch.setitem(faces._DETECTORS, "dlib", broken)
    monkeypatch.setitem(faces._REQUIRES, "dlib", ("numpy", ""))  # "installed"
    with pytest.warns(RuntimeWarning, match="dlib.*Descriptors"):
        assert faces.create_detector("auto").name == "aligned"
