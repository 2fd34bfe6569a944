"""Landmarks detected when the cache is built (a spec's `detect_landmarks=`; issue 20, item 1):
detected points land near the generator's true ones in the cache's frame, the cache key records
the detector, a face the detector misses falls back to the template (counted and named, never
fatal), and samples with landmarks of their own are never detected."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fermixnet.cli import main
from fermixnet.config import load_config
from fermixnet.data import create_dataset
from fermixnet.data.base import FERDataset, Sample
from fermixnet.data.cache import CACHE_FORMAT, build_cache, cache_key, sample_digest
from fermixnet.data.check import check_dataset, format_check
from fermixnet.data.landmark_detection import LandmarkDetection, enlarged, pick_face
from fermixnet.data.landmarks import DETECTED, META_KEYS, REAL, TEMPLATE, scale_points
from fermixnet.engine.datasets import build_train_data
from fermixnet.framing import Framing
from fermixnet.inference.detection import Face
from fermixnet.synth.generate import generate_synthetic

needs_yuface = pytest.mark.skipif(importlib.util.find_spec("yuface") is None,
                                  reason="needs yuface (the test extra)")
N = 24


def _without_landmarks(root: Path, blank: int = 0, keep: int = 0) -> Path:
    """`root/nolm.csv`: the generated manifest with the `lm_*` cells of every row but the first
    `keep` emptied, and `blank` flat grey images (no face) added."""
    with open(root / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows[keep:]:
        row.update({k: "" for k in META_KEYS})
    for b in range(blank):
        Image.fromarray(np.full((48, 48, 3), 128, np.uint8)).save(root / f"blank{b}.png")
        rows.append({**rows[0], **{k: "" for k in META_KEYS}, "path": f"blank{b}.png"})
    with open(root / "nolm.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def faces48(tmp_path_factory) -> Path:
    """N generated 48 px faces (seed 0) and their manifest with the true landmarks."""
    root = tmp_path_factory.mktemp("faces48")
    generate_synthetic(root, seed=0, size=48, counts={"train": N})
    return root


class Spy:
    """A detector wrapper that counts `detect` calls (one instance serves every thread)."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.concurrent, self.calls = inner, inner.name, True, 0
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list:
        with self._lock:
            self.calls += 1
        return self.inner.detect(image)


def _yunet(name: str):
    from fermixnet.inference.faces import landmark_detector

    return landmark_detector(name)


@needs_yuface
def test_detected_points_near_the_true_ones_in_the_cache_frame(faces48, tmp_path):
    truth = create_dataset("manifest", faces48, "train")
    ds = create_dataset("manifest", _without_landmarks(faces48), "train", file="nolm.csv",
                        detect_landmarks="yunet")
    assert ds.landmarks(0, 48, 48) is None  # the columns are empty: no real landmarks
    cached = build_cache(ds, 64, tmp_path / "cache", detectors=_yunet)  # cached at 64, not 48
    points, source = cached.landmark_arrays
    assert (source == DETECTED).sum() >= N - 1, cached.meta["undetected_landmarks"]
    assert cached.landmark_counts()["detected"] == (source == DETECTED).sum()
    true = np.stack([scale_points(truth.landmarks(i, 48, 48), (48, 48), (64, 64))
                     for i in range(N)])  # fmt: skip
    error = np.linalg.norm(points - true, axis=2).mean(1)[source == DETECTED] * 48 / 64
    # YuNet's points vs the generator's: ~2.3 px apart at 48 px (over 1000 faces: median 2.3,
    # 99th percentile 4.5; its eyes sit ~1.5 px higher)
    assert np.median(error) < 3.0 and error.max() < 6.0, error.round(2)
    assert cached.meta["landmark_detectors"]["yunet"]["min_side"] == 160


@needs_yuface
def test_a_face_the_detector_misses_is_counted_named_and_templated(faces48, tmp_path, capsys):
    root = _without_landmarks(faces48, blank=2)
    ds = create_dataset("manifest", root, "train", file="nolm.csv", detect_landmarks="yunet")
    cached = build_cache(ds, 48, tmp_path / "cache", detectors=_yunet)  # no exception
    points, source = cached.landmark_arrays
    assert (source[N:] == TEMPLATE).all() and cached.meta["landmark_misses"] >= 2
    template = Framing().points() * 48
    np.testing.assert_allclose(points[N:], np.broadcast_to(template, (2, 5, 2)), atol=1e-5)
    named = "\n".join(cached.meta["undetected_landmarks"])
    assert "blank0.png: yunet found no face" in named and "blank1.png" in named
    assert cached.skip_record()["landmark_misses"] == cached.meta["landmark_misses"]
    report = check_dataset("manifest", str(root), {"file": "nolm.csv",
                                                   "detect_landmarks": "yunet"},
                           ["train"], detectors=_yunet)  # fmt: skip
    split = report.splits[0]
    assert report.ok and split.undetected == cached.meta["landmark_misses"]
    assert split.landmarks["detected"] == cached.landmark_counts()["detected"]
    text = format_check(report)
    assert "blank0.png: yunet found no face" in text and "found no usable face" in text
    spec = f"manifest:{root},file=nolm.csv,detect_landmarks=yunet"
    assert main(["data", "check", "--data", spec, "--split", "train"]) == 0
    assert "blank1.png: yunet found no face" in capsys.readouterr().out


@needs_yuface
def test_samples_with_their_own_landmarks_are_never_detected(faces48, tmp_path):
    keep = 10
    ds = create_dataset("manifest", _without_landmarks(faces48, keep=keep), "train",
                        file="nolm.csv", detect_landmarks="yunet")
    spy = Spy(_yunet("yunet"))
    cached = build_cache(ds, 48, tmp_path / "cache", detectors=lambda n: spy)
    source = cached.landmark_arrays[1]
    assert (source[:keep] == REAL).all() and spy.calls == N - keep
    spy = Spy(_yunet("yunet"))
    cached = build_cache(create_dataset("manifest", faces48, "train", detect_landmarks="yunet"),
                         48, tmp_path / "cache", detectors=lambda n: spy)
    assert cached.landmark_counts() == {"template": 0, "real": N, "detected": 0}
    assert spy.calls == 0


@needs_yuface
def test_training_data_carries_the_detected_points(faces48, tmp_path):
    spec = f"manifest:{_without_landmarks(faces48)},file=nolm.csv,detect_landmarks=yunet"
    cfg = load_config(None, [f'data.train=["{spec}"]', "data.val_fraction=0",
                             "model.input_size=48"])  # fmt: skip
    sets = build_train_data(cfg, tmp_path / "cache", None, landmarks=True)
    points = np.stack([sets.train[i][2].numpy() for i in range(len(sets.train))])
    assert (~np.isnan(points).any(axis=(1, 2))).sum() >= N - 1  # face points, not the template


def _digest_of_two(**options) -> str:
    ds = FERDataset([Sample("a.png", 0), Sample("b.png", 1, {"k": "v"})], ("x", "y"), **options)
    return sample_digest(ds, (8, 8), "bilinear")


def test_the_key_records_the_detector_and_nothing_else_changes(faces48):
    # Without detection the digest is the one of the version before detection existed (the
    # formula of that version, on fixed samples): no cache built before is rebuilt.
    head = {"format": CACHE_FORMAT, "size": [8, 8], "method": "bilinear", "classes": ["x", "y"],
            "on_error": "raise", "framing": Framing().to_meta()}  # fmt: skip
    old = hashlib.sha256(json.dumps(head, sort_keys=True).encode())
    old.update(b'a.png\x000\x00{}\nb.png\x001\x00{"k": "v"}\n')
    assert _digest_of_two() == old.hexdigest()
    plain = create_dataset("manifest", faces48, "train")
    again = create_dataset("manifest", faces48, "train", detect_landmarks="")
    yunet = create_dataset("manifest", faces48, "train", detect_landmarks="yunet")
    haar = create_dataset("manifest", faces48, "train", detect_landmarks="haar")
    keys = {cache_key(d, (48, 48), "bilinear") for d in (plain, again)}
    assert len(keys) == 1
    named = {cache_key(d, (48, 48), "bilinear") for d in (yunet, haar)}
    assert len(named) == 2 and not named & keys
    settings = [{"yunet": {"name": "yunet", "min_score": s}} for s in (0.2, 0.5)]
    tuned = {cache_key(yunet, (48, 48), "bilinear", "raise", s) for s in settings}
    assert len(tuned) == 2 and not tuned & named
    only = create_dataset("manifest", faces48, "train", detect_landmarks="yunet",
                          only="occluder=none")
    assert {only.detect_with(i) for i in range(len(only))} == {"yunet"}  # subsets keep it


class _Fixed:
    """A fake detector: the same faces for every image, in the enlarged image's pixels."""

    name = "fixed"

    def __init__(self, faces: list[Face]) -> None:
        self.faces, self.threads = faces, set()

    def detect(self, image: np.ndarray) -> list[Face]:
        self.threads.add(threading.get_ident())
        assert min(image.shape[:2]) >= 160  # enlarged before detection
        return self.faces


def _face(x0: float, y0: float, side: float, landmarks: bool = True) -> Face:
    frac = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    pts = frac * side + (x0, y0) if landmarks else None
    return Face((x0, y0, x0 + side, y0 + side), pts, 0.9)


def test_the_largest_then_most_central_face_with_landmarks_is_taken():
    small, big, off, bare = _face(60, 60, 40), _face(0, 0, 100), _face(25, 25, 100), _face(
        0, 0, 160, landmarks=False)  # fmt: skip
    assert pick_face([small, big, bare], 160, 160) is big
    assert pick_face([big, off, small], 160, 160) is off  # as large, nearer the centre
    assert pick_face([bare], 160, 160) is None
    assert enlarged(np.zeros((48, 60, 3), np.uint8)).shape == (160, 200, 3)
    assert enlarged(np.zeros((200, 300, 3), np.uint8)).shape == (200, 300, 3)


def test_detected_points_map_back_and_bad_ones_fall_back(tmp_path):
    image = np.zeros((48, 48, 3), np.uint8)
    detection = LandmarkDetection(["fixed"], lambda n: _Fixed([_face(10, 10, 140)]))
    points, why = detection("fixed", image)
    expected = scale_points(_face(10, 10, 140).landmarks, (160, 160), (48, 48))
    assert why == "" and np.allclose(points, expected)
    outside = LandmarkDetection(["fixed"], lambda n: _Fixed([_face(100, 100, 300)]))
    points, why = outside("fixed", image)
    assert points is None and "points refused" in why and "outside" in why


def test_a_detector_is_made_per_thread_unless_concurrent(tmp_path):
    made: list[_Fixed] = []

    def factory(name: str) -> _Fixed:
        made.append(_Fixed([_face(10, 10, 140)]))
        return made[-1]

    root = tmp_path / "data"
    root.mkdir()
    lines = ["path,label,split"]
    for i in range(256):
        Image.fromarray(np.full((20, 20, 3), i, np.uint8)).save(root / f"{i}.png")
        lines.append(f"{i}.png,happy,train")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    ds = create_dataset("manifest", root, "train", detect_landmarks="fixed")
    cached = build_cache(ds, 20, tmp_path / "cache", workers=4, detectors=factory)
    assert cached.landmark_counts()["detected"] == 256
    used = [d for d in made if d.threads]
    assert all(len(d.threads) == 1 for d in used) and len(made) >= 2  # first one: settings
    assert len({t for d in used for t in d.threads}) == len(used)


def test_a_bad_detector_fails_before_any_image_is_decoded(faces48, tmp_path, monkeypatch):
    ds = create_dataset("manifest", faces48, "train", detect_landmarks="nosuch")
    monkeypatch.setattr(type(ds), "load", lambda *a: pytest.fail("decoded before the check"))
    with pytest.raises(ValueError, match=r"detect_landmarks=nosuch: .*unknown"):
        build_cache(ds, 48, tmp_path / "cache", detectors=_yunet)
    with pytest.raises(ValueError, match="pass the detector factory"):
        build_cache(ds, 48, tmp_path / "cache")
    with pytest.raises(ValueError, match="gives no landmarks"):
        _yunet("aligned")
