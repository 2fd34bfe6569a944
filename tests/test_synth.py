"""Synthetic FACS faces: determinism, manifest format, label/AU consistency, cue locations."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fermixnet.data import create_dataset
from fermixnet.labels import canonical_index
from fermixnet.synth.faces import AU_INDEX, PROTOTYPES, SynthConfig, sample_face
from fermixnet.synth.generate import generate_synthetic, render_sample
from fermixnet.synth.render import render_face

COUNTS = {"train": 14, "val": 7, "test": 7}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _rows(root: Path) -> list[dict[str, str]]:
    with (root / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = _files(generate_synthetic(tmp_path / "a", seed=3, size=32, counts=COUNTS).parent)
    b = _files(generate_synthetic(tmp_path / "b", seed=3, size=32, counts=COUNTS).parent)
    assert len(a) == sum(COUNTS.values()) + 2  # images + manifest.csv + synthetic.json
    assert a == b


def test_different_seed_gives_different_images(tmp_path: Path) -> None:
    a = _files(generate_synthetic(tmp_path / "a", seed=0, size=32, counts={"test": 7}).parent)
    b = _files(generate_synthetic(tmp_path / "b", seed=1, size=32, counts={"test": 7}).parent)
    pngs = [k for k in a if k.endswith(".png")]
    assert pngs and all(a[k] != b[k] for k in pngs)


def test_workers_do_not_change_output(tmp_path: Path) -> None:
    one = generate_synthetic(tmp_path / "one", seed=5, size=24, counts={"test": 8}, workers=1)
    two = generate_synthetic(tmp_path / "two", seed=5, size=24, counts={"test": 8}, workers=2)
    assert _files(one.parent) == _files(two.parent)


def test_manifest_layout_and_columns(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path, seed=0, size=40, counts=COUNTS).parent
    rows = _rows(root)
    with (root / "manifest.csv").open() as fh:
        header = fh.readline().strip().split(",")
    assert header[:5] == ["path", "label", "split", "occlusion", "occluder"]
    assert {"au12", "au26", "intensity", "blend", "roll", "lm_eye_l_x", "lm_mouth_y"} <= set(header)
    assert [sum(r["split"] == s for r in rows) for s in COUNTS] == list(COUNTS.values())
    for row in rows:
        path = root / row["path"]
        # images/<split>/<class>/..., so folder:<root>/images reads the same data.
        assert path.parts[-3:-1] == (row["split"], row["label"])
        assert Image.open(path).size == (40, 40)
        assert row["occlusion"] == "none"
    train_labels = [r["label"] for r in rows if r["split"] == "train"]
    assert sorted(set(train_labels)) == sorted(SynthConfig().classes)
    assert all(train_labels.count(c) == 2 for c in set(train_labels))  # balanced


def test_core_aus_present_for_each_class() -> None:
    cfg = SynthConfig(num_classes=8)
    for label, name in enumerate(cfg.classes):
        core = [au for au, w in PROTOTYPES[name].items() if w >= 0.8]
        for i in range(20):
            face = sample_face(label, cfg, np.random.default_rng([label, i]))
            for au in core:
                assert face.au(au) > 0.1, (name, au, i)
            if name == "neutral":
                assert face.aus.max() < 0.3  # resting activity and weak blends only


def test_manifest_au_columns_match_labels(tmp_path: Path) -> None:
    rows = _rows(generate_synthetic(tmp_path, seed=2, size=24, counts={"train": 42}).parent)
    for row in rows:
        aus = {k: float(v) for k, v in row.items() if k.startswith("au")}
        if row["label"] == "happy":
            assert aus["au12"] > 0 and aus["au06"] > 0
        if row["label"] == "surprise":
            assert aus["au26"] > 0 and aus["au01"] > 0 and aus["au02"] > 0
        if row["label"] == "sad":
            assert aus["au15"] > 0 and aus["au01"] > 0


def test_contempt_is_unilateral() -> None:
    cfg = SynthConfig(num_classes=8)
    face = sample_face(7, cfg, np.random.default_rng(0))
    col = face.aus[:, AU_INDEX[14]]
    assert col.max() > 0.1 and col.min() == 0.0


def test_landmarks_are_plausible() -> None:
    for i in range(10):
        _, _, meta = render_sample(0, "test", i, 64, SynthConfig())
        assert meta["lm_eye_l_x"] < 0.5 < meta["lm_eye_r_x"]
        assert meta["lm_brow_y"] < meta["lm_eye_l_y"] < meta["lm_nose_y"] < meta["lm_mouth_y"]
        assert 0.25 < meta["lm_eye_l_y"] < 0.55 and 0.55 < meta["lm_mouth_y"] < 0.9


def _diff_rows(aus: dict[int, float]) -> np.ndarray:
    """Mean per-row pixel change when only `aus` are switched on (no noise, same clutter)."""
    cfg = SynthConfig(rotation=0, shift=0, blur=0, noise=0)
    face = sample_face(0, cfg, np.random.default_rng(1))
    face = dataclasses.replace(face, aus=np.zeros_like(face.aus))
    active = face.aus.copy()
    for au, value in aus.items():
        active[:, AU_INDEX[au]] = value
    base, _ = render_face(face, 64, np.random.default_rng(9))
    moved, _ = render_face(dataclasses.replace(face, aus=active), 64, np.random.default_rng(9))
    return np.abs(base.astype(float) - moved).mean(axis=(1, 2))


@pytest.mark.parametrize(
    ("aus", "upper"),
    [
        ({1: 1.0, 2: 1.0, 5: 1.0}, True),
        ({4: 1.0, 7: 1.0}, True),
        ({12: 1.0, 26: 1.0}, False),
        ({15: 1.0, 20: 1.0}, False),
    ],
)
def test_upper_and_lower_aus_change_their_half(aus: dict[int, float], upper: bool) -> None:
    rows = _diff_rows(aus)
    top, bottom = rows[:32].sum(), rows[32:].sum()
    assert (top > 3 * bottom) if upper else (bottom > 3 * top)


def test_bad_arguments_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        SynthConfig(num_classes=6)
    with pytest.raises(ValueError, match="size"):
        generate_synthetic(tmp_path, size=8, counts={"test": 1})
    with pytest.raises(ValueError, match="unknown split"):
        generate_synthetic(tmp_path, size=32, counts={"holdout": 1})
    with pytest.raises(ValueError, match="intensity"):
        SynthConfig(intensity=(0.8, 0.2))


def test_adapters_read_the_generated_data(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path, seed=0, size=32, counts={"train": 14, "test": 7}).parent
    rows = [r for r in _rows(root) if r["split"] == "train"]
    by_manifest = create_dataset("manifest", str(root), "train")
    by_folder = create_dataset("folder", str(root / "images"), "train")
    assert len(by_manifest) == len(by_folder) == 14
    expected = sorted(canonical_index(r["label"]) for r in rows)
    assert sorted(s.label for s in by_manifest.samples) == expected
    assert sorted(s.label for s in by_folder.samples) == expected
    assert by_manifest.samples[0].meta["occlusion"] == "none"
