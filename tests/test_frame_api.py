"""The frame API (`Predictor.predict_frame(s)`, `LiveStream`): the per-image path's answers in
every backend (eager PyTorch, TorchScript, ONNX Runtime fp32 and int8), one forward pass per
batch of frames, caller's boxes skipping the detector, tracking, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import synth_scene
from fermixnet.inference import Predictor
from fermixnet.inference.faces import Face, create_detector
from fermixnet.inference.video import IoUTracker, LiveStream

BACKENDS = ("torch", "torchscript", "onnxruntime", "int8")


@pytest.fixture(scope="module")
def exported(serve_checkpoints, tmp_path_factory) -> dict[str, tuple[object, str]]:
    """backend name -> (path, Predictor backend) of the tiny FERMixNet in every format."""
    from fermixnet.inference.backends import normalise_crops
    from fermixnet.inference.export import export_model, write_sidecar
    from fermixnet.inference.quantize import quantize_int8
    from fermixnet.models.weights import load_checkpoint

    folder = tmp_path_factory.mktemp("frame_api")  # serve_checkpoints registers the tiny trunk
    model, meta = load_checkpoint(serve_checkpoints["torch"])
    export_model(model, meta, folder / "model.pt", fmt="torchscript")
    crops = np.random.default_rng(0).integers(0, 256, (16, 48, 48, 3), dtype=np.uint8)
    int8 = quantize_int8(serve_checkpoints["onnx"],
                         normalise_crops(crops, (0.5,) * 3, (0.25,) * 3), folder / "m.int8.onnx")
    write_sidecar(int8, meta, export_format="onnx")
    return {"torch": (serve_checkpoints["torch"], "torch"),
            "torchscript": (folder / "model.pt", "torchscript"),
            "onnxruntime": (serve_checkpoints["onnx"], "onnxruntime"),
            "int8": (int8, "onnxruntime")}


def _predictor(exported, backend: str, detector: str = "haar") -> Predictor:
    path, name = exported[backend]
    return Predictor.from_checkpoint(path, backend=name, detector=detector)


def _counting(pred: Predictor) -> list[int]:
    """Wrap the predictor's forward pass; returns the list of batch sizes it was called with."""
    calls: list[int] = []
    inner = pred.logits_fn

    def counted(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return inner(x)

    pred.logits_fn = counted
    return calls


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_answers_equal_the_per_image_path(exported, backend):
    pred = _predictor(exported, backend)
    scene = synth_scene()
    want = pred.predict(scene).to_dict()
    got = pred.predict_frame(scene).to_dict()
    assert got.pop("source") == "<frame>" and want.pop("source") == "<array>"
    assert len(got["faces"]) == 2 and got == want
    # OpenCV's BGR order, flipped by the API
    assert pred.predict_frame(np.ascontiguousarray(scene[..., ::-1]), channels="bgr").faces[0] \
        .probs == pytest.approx(want["faces"][0]["probs"], abs=1e-6)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_batch_of_frames_is_one_forward_pass(exported, backend):
    pred = _predictor(exported, backend)
    pred.batch_size = 2  # the frame API does not split a batch
    frames = [synth_scene(), synth_scene((0,)), synth_scene((11, 0))]
    single = [pred.predict_frame(f) for f in frames]
    calls = _counting(pred)
    batch = pred.predict_frames(frames)
    assert [len(r.faces) for r in batch] == [len(r.faces) for r in single] == [2, 1, 2]
    assert calls == [5]
    for a, b in zip(batch, single, strict=True):
        assert a.faces[0].label == b.faces[0].label
        assert np.allclose(list(a.faces[0].probs.values()), list(b.faces[0].probs.values()),
                           atol=1e-4)
    assert pred.predict_frames(np.stack(frames[:2]))[1].faces[0].box == batch[1].faces[0].box


class _Recording:
    """A detector that says it may run in several threads, and records which threads it ran in
    (the Haar detector inside runs one call at a time)."""

    name = "recording"
    concurrent = True

    def __init__(self) -> None:
        import threading

        self.inner, self.lock, self.threads = create_detector("haar"), threading.Lock(), []

    def detect(self, image):
        import threading

        self.threads.append(threading.current_thread().name)
        with self.lock:
            return self.inner.detect(image)


def test_a_batch_is_detected_and_cropped_on_the_thread_pool_with_the_same_answers(exported):
    pred = _predictor(exported, "onnxruntime")
    frames = [synth_scene(), synth_scene((0,)), synth_scene((11, 0)), synth_scene((0, 11))]
    one_by_one = [pred.predict_frame(f).to_dict() for f in frames]  # one frame: no pool
    pred.detector = recording = _Recording()
    assert [r.to_dict() for r in pred.predict_frames(frames)] == one_by_one
    assert len(recording.threads) == 4
    assert all(name.startswith("fermixnet-detect") for name in recording.threads)
    recording.concurrent = False  # a detector that may not: every frame in the caller's thread
    recording.threads.clear()
    assert [r.to_dict() for r in pred.predict_frames(frames)] == one_by_one
    assert set(recording.threads) == {__import__("threading").current_thread().name}


class _NoDetector:
    name = "fails"

    def detect(self, image):
        raise AssertionError("the detector must not run when boxes are given")


def test_callers_boxes_skip_detection(exported):
    pred = _predictor(exported, "onnxruntime")
    scene = synth_scene()
    detected = pred.predict_frame(scene)
    pred.detector = _NoDetector()
    calls = _counting(pred)
    boxes = [f.box for f in detected.faces]
    got = pred.predict_frames([scene, scene], [boxes, boxes[:1]])
    assert calls == [3]
    for face, want in zip(got[0].faces, detected.faces, strict=True):
        assert face.box == want.box and face.detector_score == 1.0
        assert face.probs == pytest.approx(want.probs, abs=1e-5)  # a Haar box is a box
    assert len(got[1].faces) == 1
    # a detection from elsewhere keeps its landmarks and score
    haar = create_detector("haar").detect(scene)[0]
    face = pred.predict_frame(scene, [Face(haar.box, haar.landmarks, 7.5)]).faces[0]
    assert face.detector_score == 7.5 and face.probs == pytest.approx(detected.faces[0].probs,
                                                                      abs=1e-5)
    assert pred.predict_frame(scene, boxes=[]).faces == []


BAD = {
    "float frame": (lambda s: s.astype(np.float32), None, "got dtype float32; scale floats"),
    "grey frame": (lambda s: s[..., 0], None, "got shape (200, 320); grey frames"),
    "alpha": (lambda s: np.dstack([s, s[..., :1]]), None, "drop the alpha channel"),
    "empty": (lambda s: s[:0], None, "empty frame of shape (0, 320, 3)"),
    "not an array": (lambda s: s.tolist(), None, "expected an (H, W, 3) uint8 RGB numpy array"),
    "box outside": (lambda s: s, [(300, 10, 340, 50)], "box 0: (300, 10, 340, 50) is not inside"
                    " the 320x200 frame; expected 0 <= x0 < x1 <= 320"),
    "empty box": (lambda s: s, [(10, 10, 10, 50)], "is not inside the 320x200 frame"),
    "not a box": (lambda s: s, [(1, 2, 3)], "box 0: expected (x0, y0, x1, y1), got (1, 2, 3)"),
    "nan box": (lambda s: s, [(0, 0, float("nan"), 5)], "is not finite"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_frames_and_boxes_name_what_was_expected(exported, case):
    pred = _predictor(exported, "onnxruntime")
    make, boxes, message = BAD[case]
    with pytest.raises(ValueError, match="frame 0") as err:
        pred.predict_frame(make(synth_scene()), boxes)
    assert message in str(err.value)
    assert len(pred.predict_frame(synth_scene()).faces) == 2  # still predicts


def test_bad_batches(exported):
    pred = _predictor(exported, "onnxruntime")
    scene = synth_scene()
    with pytest.raises(ValueError, match=r"one list of boxes per frame \(2\), got 1"):
        pred.predict_frames([scene, scene], [[(0, 0, 5, 5)]])
    with pytest.raises(ValueError, match="use predict_frame for one frame"):
        pred.predict_frames(scene)
    with pytest.raises(ValueError, match=r"frame 1: .* got dtype int64"):
        pred.predict_frames([scene, scene.astype(np.int64)])
    with pytest.raises(ValueError, match="channels: expected 'rgb' or 'bgr', got 'yuv'"):
        pred.predict_frame(scene, channels="yuv")
    assert pred.predict_frames([]) == []


def test_live_stream_tracks_and_smooths(exported):
    pred = _predictor(exported, "torch")
    stream = LiveStream(pred, smoothing=0.5)
    a = synth_scene()
    b = np.ascontiguousarray(np.roll(a, 4, axis=1))  # the faces moved by 4 pixels
    first, second = stream.push(a), stream.push(b)
    assert (first.frame, second.frame) == (0, 1) and second.time >= first.time >= 0
    assert [f.track_id for f in second.faces] == [f.track_id for f in first.faces] == [0, 1]
    raw = pred.predict_frame(b)
    classes = pred.classes
    for s, f0, r in zip(second.faces, first.faces, raw.faces, strict=True):
        want = [0.5 * f0.probs[c] + 0.5 * r.probs[c] for c in classes]
        assert [s.probs[c] for c in classes] == pytest.approx(want, abs=1e-6)
    tracker = IoUTracker()
    assert pred.predict_frame(a, tracker=tracker).faces[1].track_id == 1
    with pytest.raises(ValueError, match=r"smoothing must be in \[0, 1\)"):
        LiveStream(pred, smoothing=1.0)

