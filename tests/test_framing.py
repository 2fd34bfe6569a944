"""Framings: adapters declare them, checkpoints record them, inference reproduces them.

The main check draws synthetic faces (whose training framing is known: the generator's image),
pastes them into larger scenes at known positions and scales, and asks the inference path for the
crop: its corners must fall on the pasted image's corners within a few pixels.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from fermixnet.data.registry import create_dataset, dataset_framing, spec_framing
from fermixnet.framing import FER2013_FRAMING, RAFDB_TEMPLATE, Framing, parse_framing
from fermixnet.inference.align import align_face, crop_corners, framing_transform
from fermixnet.inference.backends import predictor_options, sidecar_meta
from fermixnet.inference.export import write_sidecar
from fermixnet.inference.faces import (
    Face,
    box_landmarks,
    complete_landmarks,
    create_detector,
    list_detectors,
)
from fermixnet.inference.predictor import Predictor
from fermixnet.synth import generate as synthetic

SIZE = 48


def _predictor(framing: Framing | None, template: np.ndarray | None = None) -> Predictor:
    classes = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
    return Predictor(lambda x: np.zeros((len(x), 7), np.float32), classes, (SIZE, SIZE),
                     framing=framing, template=template)


def _transform(pred: Predictor, face: Face) -> np.ndarray:
    return framing_transform(face.landmarks, pred.framing, pred.input_size)


@pytest.fixture(scope="module")
def synth_framing(tmp_path_factory: pytest.TempPathFactory) -> Framing:
    """The framing the demo records for the generator's faces (mean of 84 training faces)."""
    from fermixnet.demo import synthetic_template

    out = tmp_path_factory.mktemp("synth")
    manifest = synthetic.generate_synthetic(out, seed=3, size=48, counts={"train": 84})
    return Framing("box", template=tuple(map(tuple, synthetic_template(manifest))))


@pytest.mark.parametrize(("index", "scale", "x", "y"),
                         [(0, 1.0, 40, 30), (1, 1.5, 7, 52), (2, 0.75, 90, 11), (3, 1.25, 0, 0)])
def test_synthetic_face_is_cropped_as_it_was_drawn(synth_framing, index, scale, x, y):
    # A face at the generator's mean pose (no roll, shift or size jitter), drawn at 96 px and
    # pasted at (x, y) scaled by `scale`: its training framing is exactly the pasted square.
    cfg = synthetic.SynthConfig(rotation=0.0, shift=0.0, scale=(0.98, 0.98))
    image, _, meta = synthetic.render_sample(0, "test", index, 96, cfg)
    side = round(96 * scale)
    scene = np.full((300, 300, 3), 90, np.uint8)
    scene[y:y + side, x:x + side] = np.asarray(Image.fromarray(image).resize((side, side)))
    keys = ("eye_l", "eye_r", "nose", "mouth")  # the renderer's known landmarks
    pts = np.array([[meta[f"lm_{k}_x"], meta[f"lm_{k}_y"]] for k in keys]) * side + (x, y) - 0.5
    face = Face((0, 0, 1, 1), complete_landmarks(pts, (0, 1, 2, 5)), 1.0)
    pred = _predictor(synth_framing)
    corners = crop_corners(_transform(pred, face), pred.input_size)
    want = np.array([[x, y], [x + side, y], [x + side, y + side], [x, y + side]]) - 0.5
    assert np.abs(corners - want).max() < 0.05 * side  # 1-4 %: identities vary about the mean
    # The crop's pixels are the training image's (resized to the model's input).
    crop = pred.crop(scene, face).astype(np.float64)
    train = np.asarray(Image.fromarray(image).resize((SIZE, SIZE)), dtype=np.float64)
    # RAF-DB's face box would miss by 7-11 % of the side: the test tells framings apart.
    raf = crop_corners(framing_transform(face.landmarks, Framing("box"), SIZE), SIZE)
    assert np.abs(raf - want).max() > 0.06 * side
    assert np.abs(crop - train).mean() < 20


def test_box_framing_from_a_box_only_detector_is_the_box_grown_by_its_margin():
    box = (30.0, 40.0, 130.0, 140.0)  # a Haar-style box: landmarks placed by the template
    face = Face(box, box_landmarks(box), 1.0)
    pred = _predictor(parse_framing("box:0.1"))
    corners = crop_corners(_transform(pred, face), SIZE)
    # 100 px face box + 10 px each side, to within half a crop pixel (template points are pixel
    # centres of the crop, box edges are continuous).
    half = 0.5 * 120 / SIZE
    np.testing.assert_allclose(corners, [[20, 30], [140, 30], [140, 150], [20, 150]], atol=half)
    assert corners[1, 0] - corners[0, 0] == pytest.approx(120)


def test_box_framing_stays_upright_and_template_framing_turns_the_face():
    rot = math.radians(25)
    r = np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
    marks = (RAFDB_TEMPLATE * 80) @ r.T + (60, 50)  # a face turned by 25 degrees
    face = Face((0, 0, 1, 1), marks, 1.0)
    box = crop_corners(framing_transform(marks, Framing("box"), SIZE), SIZE)
    assert box[0, 1] == pytest.approx(box[1, 1]) and box[0, 0] == pytest.approx(box[3, 0])
    tmpl = framing_transform(marks, Framing("template"), SIZE)
    np.testing.assert_allclose(marks @ tmpl[:, :2].T + tmpl[:, 2], RAFDB_TEMPLATE * SIZE,
                               atol=1e-6)
    corners = crop_corners(tmpl, SIZE)
    angle = math.degrees(math.atan2(*(corners[1] - corners[0])[::-1]))
    assert angle == pytest.approx(25, abs=1e-6)
    assert not np.allclose(_predictor(Framing("box")).crop(np.zeros((200, 200, 3), np.uint8)
                                                           + 7, face), 0)


def test_checkpoint_without_framing_keeps_the_old_alignment():
    meta = {"classes": ["a", "b"], "input_size": SIZE, "align_template": RAFDB_TEMPLATE.tolist()}
    opts = predictor_options(meta)
    assert opts["framing"] is None
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 120, 3), dtype=np.uint8)
    marks = RAFDB_TEMPLATE * 70 + (20, 25) + rng.normal(0, 2, (5, 2))
    want = align_face(image, marks, SIZE, opts["template"])
    for framing in (None, Framing("as_given")):
        got = _predictor(framing, opts["template"]).crop(image, Face((0, 0, 1, 1), marks, 1.0))
        np.testing.assert_array_equal(got, want)


def test_framing_travels_through_meta_and_the_export_sidecar(tmp_path):
    framing = Framing("box", 0.2, template=tuple(map(tuple, RAFDB_TEMPLATE * 0.9 + 0.05)))
    assert Framing.from_meta(json.loads(json.dumps(framing.to_meta()))) == framing
    model_file = tmp_path / "model.onnx"
    write_sidecar(model_file, {"classes": ["a", "b"], "input_size": 32,
                               "framing": framing.to_meta()}, export_format="onnx")
    assert predictor_options(sidecar_meta(model_file))["framing"] == framing
    with pytest.raises(ValueError, match="framing"):
        Framing.from_meta({"margin": 0.1})


def test_parse_framing_forms_and_errors():
    assert parse_framing("box:0.25") == Framing("box", 0.25)
    assert parse_framing("as-given") == Framing("as_given")
    assert parse_framing("template").points() == pytest.approx(RAFDB_TEMPLATE)
    for bad in ("box:wide", "square", "template:0.1", "box:5"):
        with pytest.raises(ValueError, match="framing"):
            parse_framing(bad)


def test_adapters_declare_framings_and_specs_override_them(tmp_path):
    assert dataset_framing("rafdb") == Framing("template")
    assert dataset_framing("ferplus") == parse_framing(FER2013_FRAMING)
    assert dataset_framing("affectnet") == Framing("box")
    assert dataset_framing("folder") == Framing("as_given")
    assert spec_framing("folder:/nowhere,framing=box:0.3") == Framing("box", 0.3)
    for split in ("train", "test"):
        (tmp_path / split / "happy").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / "happy" / "a.png")
    ds = create_dataset("folder", tmp_path, "test", framing="template", num_classes="7")
    assert ds.framing == Framing("template")
    assert create_dataset("folder", tmp_path, "test", num_classes="7").framing == Framing()
    with pytest.raises(ValueError, match="framing='wide'"):
        create_dataset("folder", tmp_path, "test", framing="wide")


def test_checkpoint_meta_records_the_training_framing():
    from fermixnet.config import load_config
    from fermixnet.engine.run_state import model_meta

    cfg = load_config(None, ["data.train=[rafdb:/data/raf]"])
    assert model_meta(cfg, {})["framing"] == {"kind": "template", "margin": 0.0}
    cfg = load_config(None, ['data.train=["ferplus:/data/fer,framing=box:0.3"]'])
    assert model_meta(cfg, {})["framing"] == {"kind": "box", "margin": 0.3}
    mixed = load_config(None, ["data.train=[rafdb:/r,affectnet:/a]"])
    assert model_meta(mixed, {})["framing"]["kind"] == "as_given"


# --- the same crop from every detector ------------------------------------------------------------
_DETECTORS = ("yunet", "dlib", "haar")


def _box_crop(det, img: np.ndarray, box: tuple[float, ...], framing: Framing) -> np.ndarray:
    """Corners of the crop that ``det``'s detection of the face at ``box`` gives."""
    from scene_helpers import box_iou

    found = [f for f in det.detect(img) if box_iou(f.box, box) > 0.4]
    assert len(found) == 1, (det.name, box, [f.box for f in det.detect(img)])
    return crop_corners(framing_transform(found[0].landmarks, framing, SIZE), SIZE)


@pytest.mark.skipif(not all(list_detectors()[n] for n in _DETECTORS),
                    reason="needs yuface, dlib and OpenCV (the test extra)")
def test_every_detector_gives_the_same_box_crop_of_a_face():
    """FER2013's framing (box:0.1) from Haar's box, dlib's and YuNet's landmarks is one square.

    Faces: a real photograph (Grace Hopper, mirrored, turned, 80-200 px, in 640x480 scenes) and
    two drawn ones. Offsets are the largest corner offset from YuNet's crop, in pixels of the
    48 px crop. Measured here: dlib 0.4-5.2 px (mean 2.3), Haar 1.1-4.0 px (mean 2.5): single
    faces scatter (each detector's landmarks or box move by a few % of the face), the means
    show no bias. Before dlib's nose base was placed where it sits (DLIB_POINTS) and the face
    box defined by where landmarks sit in Haar boxes (BOX_TEMPLATE), dlib's crops sat lower and
    larger (mean 4.4 px, up to 6.3 px; Haar mean 2.9 px): this test failed.
    """
    from scene_helpers import photo_scene, scene_with_faces

    dets = {n: create_detector(n) for n in _DETECTORS}
    framing = parse_framing(FER2013_FRAMING)
    cases = [photo_scene(seed) for seed in range(4)]
    img, boxes = scene_with_faces(3, n_faces=2, size=384, face=96)
    cases += [(img, box) for box in boxes]
    offsets: dict[str, list[float]] = {"dlib": [], "haar": []}
    for img, box in cases:
        corners = {n: _box_crop(d, img, box, framing) for n, d in dets.items()}
        side = corners["yunet"][1, 0] - corners["yunet"][0, 0]
        for n, found in offsets.items():
            found.append(float(np.abs(corners[n] - corners["yunet"]).max() / side * SIZE))
    for n, found in offsets.items():
        assert max(found) < 6.0 and np.mean(found) < 3.5, (n, offsets)
