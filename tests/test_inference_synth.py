"""`fermixnet predict` end to end on faces drawn by the project's own synthetic generator,
pasted into larger scenes at known positions, with and without occluders."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from PIL import Image

from fermixnet.cli import main
from fermixnet.inference.align import estimate_similarity
from fermixnet.inference.faces import complete_landmarks
from fermixnet.synth import generate as synthetic
from fermixnet.synth import occlude as occluders
from scene_helpers import background, box_iou, paste

needs_cv2 = pytest.mark.skipif(importlib.util.find_spec("cv2") is None, reason="needs OpenCV")

FACE = 96


pytestmark = pytest.mark.usefixtures("_tiny_trunk")


def _face(index: int, occlusion: str | None) -> tuple[np.ndarray, dict[str, object]]:
    """Generator sample ``index`` of the test split, optionally with an occluder drawn on it."""
    image, _, meta = synthetic.render_sample(0, "test", index, FACE, synthetic.SynthConfig())
    if occlusion is not None:
        rng = np.random.default_rng(index)
        marks = occluders.landmarks_for(meta, FACE, FACE, rng)
        image = occluders.occlude(image, occlusion, rng, landmarks=marks).image
    return image, meta


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory):
    """Nine 384x384 scenes, two generator faces each; six clean, three occluded (upper, lower,
    corner). Returns (folder, {file name: (boxes, occluded)})."""
    root = tmp_path_factory.mktemp("synth_scenes")
    truth = {}
    kinds = [None] * 6 + ["upper", "lower", "corner"]
    for s, kind in enumerate(kinds):
        img = background(384, 384, seed=100 + s)
        boxes = []
        for j in range(2):
            face, _ = _face(2 * s + j, kind)
            x, y = 16 + 192 * j + 9 * s, 24 + 29 * s
            boxes.append(paste(img, face, x, y))
        name = f"scene{s}_{kind or 'clean'}.png"
        Image.fromarray(img).save(root / name)
        truth[name] = (boxes, kind is not None)
    return root, truth


def test_template_roughly_matches_the_generator_framing():
    """Mapping the generator's own landmarks onto the alignment template changes its crops
    little on average: no flip, little rotation, a small shift, scale within 25 % (measured:
    the generator draws faces ~19 % smaller than the RAF-DB style template)."""
    from fermixnet.inference.align import template_points

    scales, angles, shifts = [], [], []
    for index in range(12):
        _, meta = _face(index, None)
        keys = ("eye_l", "eye_r", "nose", "mouth")
        pts = np.array([[meta[f"lm_{k}_x"], meta[f"lm_{k}_y"]] for k in keys]) * FACE
        m = estimate_similarity(complete_landmarks(pts, (0, 1, 2, 5)), template_points(FACE))
        scales.append(np.sqrt(np.linalg.det(m[:, :2])))
        angles.append(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
        centre = np.array([FACE / 2, FACE / 2])
        shifts.append(np.linalg.norm(m[:, :2] @ centre + m[:, 2] - centre))
    assert 0.8 < np.mean(scales) < 1.25
    assert abs(np.mean(angles)) < 5.0
    assert np.mean(shifts) < 0.1 * FACE


@needs_cv2
@pytest.mark.slow
def test_predict_on_generator_scenes(checkpoint, scenes, tmp_path, capsys):
    root, truth = scenes
    out = tmp_path / "out"
    assert main(["predict", str(root), "--checkpoint", str(checkpoint), "--detector", "haar",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert sorted(r["source"].rsplit("/", 1)[-1] for r in results) == sorted(truth)
    found_clean, misplaced = 0, 0
    for r in results:
        boxes, occluded = truth[r["source"].rsplit("/", 1)[-1]]
        assert (r["width"], r["height"]) == (384, 384)
        for face in r["faces"]:
            assert sum(face["probs"].values()) == pytest.approx(1.0, abs=1e-4)
            assert len(face["landmarks"]) == 5
            hit = max(box_iou(face["box"], b) for b in boxes) > 0.3
            misplaced += not hit
            found_clean += hit and not occluded
    # Measured with Haar on such faces (docs/inference.md): 8 of 20 found, few false boxes.
    # Here 4 of the 12 clean faces were found and one box lay off the faces (below one).
    assert found_clean >= 3
    assert misplaced <= 1


def test_predict_aligned_generator_crops_with_and_without_occluders(checkpoint, tmp_path, capsys):
    for i, kind in enumerate((None, "upper", "lower", "left", "object")):
        Image.fromarray(_face(i, kind)[0]).save(tmp_path / f"{i}_{kind}.png")
    assert main(["predict", str(tmp_path), "--checkpoint", str(checkpoint), "--detector",
                 "aligned"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert len(results) == 5
    for r in results:
        (face,) = r["faces"]
        assert face["box"] == [0.0, 0.0, float(FACE), float(FACE)]
        assert face["label"] in face["probs"] and len(face["probs"]) == 7
