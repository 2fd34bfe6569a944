"""Synthetic occluders: region of each type, labels kept, any resolution, determinism, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fermixnet.cli import main
from fermixnet.data import create_dataset
from fermixnet.synth.files import write_manifest
from fermixnet.synth.generate import SynthConfig, generate_synthetic, render_sample
from fermixnet.synth.occlude import (
    OCCLUDERS,
    OCCLUSION_TYPES,
    landmarks_for,
    occlude,
    occlude_dataset,
    parse_types,
)

CASES = [(kind, name) for kind, names in OCCLUDERS.items() for name in names]


def _face(i: int, size: int = 64) -> tuple[np.ndarray, dict]:
    image, _, meta = render_sample(0, "test", i, size, SynthConfig())
    return image, meta


def _covered(kind: str, name: str, seed: int, size: int = 64) -> tuple[np.ndarray, object]:
    image, meta = _face(seed, size)
    rng = np.random.default_rng([seed, 7])
    occ = occlude(image, kind, rng, landmarks_for(meta, size, size, rng), occluder=name)
    return occ.alpha >= 0.5, occ


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_each_occluder_covers_its_region(kind: str, name: str) -> None:
    for seed in range(6):
        mask, occ = _covered(kind, name, seed)
        ys, xs = np.nonzero(mask)
        h, w = mask.shape
        assert occ.kind == kind and occ.occluder == name
        assert 0.01 < occ.area < 0.75 and occ.area == pytest.approx(mask.mean())
        upper, left = (ys < h / 2).mean(), (xs < w / 2).mean()
        if kind == "upper":
            assert upper > 0.7
        elif kind == "lower":
            assert upper < 0.3
        elif kind in ("left", "right"):
            assert (left if kind == "left" else 1 - left) > 0.75
            assert occ.side == kind
        elif kind == "corner":
            assert upper > 0.55
            assert (left if occ.side == "left" else 1 - left) > 0.75


def test_occluders_are_not_fermix_boxes() -> None:
    # Shapes vary with the face: two draws of a type never cover the same pixels, and no type
    # covers an exact image half.
    for kind in OCCLUSION_TYPES:
        a, _ = _covered(kind, None, 1)
        b, _ = _covered(kind, None, 2)
        assert (a != b).any()
        assert a.mean() < 0.5 or not a[:32].all()


def test_pixels_outside_the_occluder_are_unchanged() -> None:
    image, meta = _face(3)
    rng = np.random.default_rng(0)
    occ = occlude(image, "lower", rng, landmarks_for(meta, 64, 64, rng))
    untouched = occ.alpha == 0
    assert untouched.any()
    np.testing.assert_array_equal(occ.image[untouched], image[untouched])
    assert (occ.image[occ.alpha > 0.9] != image[occ.alpha > 0.9]).any()


def test_template_landmarks_on_any_resolution() -> None:
    image = np.full((90, 150, 3), 128, np.uint8)  # non-square, no landmarks
    for kind in OCCLUSION_TYPES:
        occ = occlude(image, kind, np.random.default_rng(4))
        assert occ.image.shape == image.shape and occ.alpha.shape == (90, 150)
        assert occ.area > 0.01


def test_bad_inputs_raise() -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown occlusion type"):
        occlude(image, "diagonal", np.random.default_rng(0))
    with pytest.raises(ValueError, match="not of type"):
        occlude(image, "upper", np.random.default_rng(0), occluder="mask")
    with pytest.raises(ValueError, match="uint8"):
        occlude(image.astype(np.float32), "upper", np.random.default_rng(0))
    assert parse_types("all") == OCCLUSION_TYPES
    assert parse_types("lower, upper") == ("lower", "upper")


def _foreign_dataset(root: Path, size: tuple[int, int] = (80, 60)) -> list[dict]:
    """A manifest data set without landmark columns, at another resolution."""
    rows = []
    rng = np.random.default_rng(0)
    for i, (label, split) in enumerate([("happy", "test"), ("sad", "test"), ("anger", "train")]):
        rel = f"img/{i}.png"
        (root / "img").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
            root / rel
        )
        rows.append({"path": rel, "label": label, "split": split, "subject": f"s{i}"})
    write_manifest(root / "manifest.csv", rows, ["subject"])
    return rows


def _rows(manifest: Path) -> list[dict[str, str]]:
    with manifest.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_occlude_dataset_keeps_labels_and_records_types(tmp_path: Path) -> None:
    _foreign_dataset(tmp_path / "src")
    manifest = occlude_dataset(f"manifest:{tmp_path / 'src'}", tmp_path / "out", seed=0)
    rows = _rows(manifest)
    assert len(rows) == 2 * (len(OCCLUSION_TYPES) + 1)  # test split only, + clean copies
    for row in rows:
        assert row["split"] == "test"
        assert row["label"] == {"img/0.png": "happy", "img/1.png": "sad"}[row["source"]]
        assert row["subject"] in ("s0", "s1")  # the source's meta is kept
        assert Image.open(manifest.parent / row["path"]).size == (80, 60)
        if row["occlusion"] == "none":
            assert row["occluder"] == "none" and float(row["occ_area"]) == 0
        else:
            assert row["occluder"] in OCCLUDERS[row["occlusion"]]
            assert float(row["occ_area"]) > 0
    assert sorted({r["occlusion"] for r in rows}) == sorted((*OCCLUSION_TYPES, "none"))


def test_occlude_dataset_random_type_and_determinism(tmp_path: Path) -> None:
    _foreign_dataset(tmp_path / "src")
    spec = f"manifest:{tmp_path / 'src'}"
    kw = {"types": ("upper", "corner"), "seed": 3, "splits": ("train", "test"), "random_type": True}
    a = occlude_dataset(spec, tmp_path / "a", keep_clean=False, **kw)
    b = occlude_dataset(spec, tmp_path / "b", keep_clean=False, **kw)
    rows = _rows(a)
    assert len(rows) == 3 and {r["occlusion"] for r in rows} <= {"upper", "corner"}
    assert a.read_bytes() == b.read_bytes()
    for row in rows:
        assert (a.parent / row["path"]).read_bytes() == (b.parent / row["path"]).read_bytes()


def test_occlude_uses_synthetic_landmarks(tmp_path: Path) -> None:
    src = generate_synthetic(tmp_path / "syn", seed=0, size=48, counts={"test": 7}).parent
    rows = _rows(occlude_dataset(f"manifest:{src}", tmp_path / "occ", types=("upper",), seed=0))
    occluded = [r for r in rows if r["occlusion"] == "upper"]
    assert len(occluded) == 7 and all(r["lm_eye_l_x"] for r in occluded)


def test_occlude_folder_dataset_at_another_resolution(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for split, label in [("test", "fear"), ("test", "surprise"), ("train", "happy")]:
        folder = tmp_path / "src" / split / label
        folder.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)).save(folder / "a.jpg")
    manifest = occlude_dataset(
        f"folder:{tmp_path / 'src'}",
        tmp_path / "out",
        seed=0,
        types=("corner", "object"),
        keep_clean=False,
    )
    rows = _rows(manifest)
    assert sorted((r["label"], r["occlusion"]) for r in rows) == [
        ("fear", "corner"),
        ("fear", "object"),
        ("surprise", "corner"),
        ("surprise", "object"),
    ]
    for row in rows:
        assert Image.open(manifest.parent / row["path"]).size == (100, 120)
        assert row["source"].startswith("test/")


def test_cli_synth_and_occlude(tmp_path: Path) -> None:
    synth = [
        "data",
        "synth",
        "--out",
        str(tmp_path / "s"),
        "--size",
        "32",
        "--train",
        "7",
        "--val",
        "0",
        "--test",
        "7",
        "--seed",
        "1",
    ]
    assert main(synth) == 0
    occ = [
        "data",
        "occlude",
        "--data",
        f"manifest:{tmp_path / 's'}",
        "--out",
        str(tmp_path / "o"),
        "--types",
        "lower,left",
        "--no-clean",
    ]
    assert main(occ) == 0
    rows = _rows(tmp_path / "o" / "manifest.csv")
    assert sorted({r["occlusion"] for r in rows}) == ["left", "lower"] and len(rows) == 14
    assert (
        main(
            [
                "data",
                "occlude",
                "--data",
                f"manifest:{tmp_path / 's'}",
                "--out",
                str(tmp_path / "x"),
                "--types",
                "diagonal",
            ]
        )
        == 2
    )


def test_occluded_set_reads_back_with_subsets(tmp_path: Path) -> None:
    src = generate_synthetic(tmp_path / "syn", seed=0, size=32, counts={"test": 7}).parent
    occlude_dataset(f"manifest:{src}", tmp_path / "occ", types=("upper", "lower"), seed=0)
    ds = create_dataset("manifest", str(tmp_path / "occ"), "test")
    assert len(ds) == 21 and ds.load(0).shape == (32, 32, 3)
    subsets = ds.subsets()
    assert len(subsets["occlusion=upper"]) == 7 and len(subsets["occlusion=lower"]) == 7
