"""Landmarks travel with the training data: sources, cache storage, flips and crops, bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data_replicas import make_affectnet_csv, make_affectnet_npy, make_rafdb
from fermixnet.augment.landmarks import FLIP_ORDER, landmark_problem
from fermixnet.augment.transforms import FlipAffine, FlipCrop
from fermixnet.data import create_dataset
from fermixnet.data.cache import build_cache, cache_key
from fermixnet.data.cached import ImageTensorDataset
from fermixnet.data.check import check_dataset, format_check
from fermixnet.data.device_loader import (
    TensorBatchLoader,
    apply_flip_crop,
    flip_crop_params,
    move_landmarks,
)
from fermixnet.data.landmarks import META_KEYS, REAL, TEMPLATE, from_68
from fermixnet.framing import RAFDB_TEMPLATE, Framing
from fermixnet.synth.generate import generate_synthetic

S = 32
# Fractions of an upright face (the template), per sample slightly moved.
GOOD = RAFDB_TEMPLATE


def _manifest(root: Path, rows: list[dict[str, object]]) -> Path:
    """A manifest of 32 px images; each row's `lm` (5, 2) fractions (or text) become columns."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, row in enumerate(rows):
        rel = f"img{i}.png"
        Image.fromarray(np.full((S, S, 3), 40 + i, np.uint8)).save(root / rel)
        cells = {"path": rel, "label": "happy", "split": "train"}
        lm = row.get("lm")
        if lm is not None:
            flat = np.asarray(lm, dtype=object).reshape(-1)
            cells.update({k: v for k, v in zip(META_KEYS, flat, strict=True)})
        lines.append(cells)
    columns = ["path", "label", "split", *META_KEYS]
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(lines)
    return root


def test_synthetic_faces_cache_exact_landmarks(tmp_path):
    generate_synthetic(tmp_path / "synth", seed=0, size=48, counts={"train": 7})
    ds = create_dataset("manifest", tmp_path / "synth", "train")
    cached = build_cache(ds, 24, tmp_path / "cache")
    assert cached.landmark_counts() == {"template": 0, "real": 7, "detected": 0}
    assert cached.landmark_path.is_file() and cached.meta["landmarks"]["real"] == 7
    assert cached.skip_record()["landmarks"]["real"] == 7  # what a run folder's data.json keeps
    pts = cached.landmarks(np.arange(7))  # (7, 5, 2) in 24 px pixels
    meta = ds.samples[3].meta
    frac = np.array([[float(meta[f"lm_{n}_x"]), float(meta[f"lm_{n}_y"])]
                     for n in ("eye_l", "eye_r", "nose", "mouth_l", "mouth_r")])
    want = (frac * 48 - 0.5 + 0.5) * 0.5 - 0.5  # 48 px pixels, then resized to 24 px
    assert np.allclose(pts[3].numpy(), want, atol=1e-4)
    assert all(landmark_problem(p.numpy(), 24, 24) == "" for p in pts)
    # the mouth corners flank the mouth centre the renderer draws
    mouth = np.array([float(meta["lm_mouth_x"]), float(meta["lm_mouth_y"])])
    assert frac[3, 0] < mouth[0] < frac[4, 0]


def test_bad_landmarks_fall_back_counted_and_named(tmp_path):
    eyes_on_one = GOOD.copy()
    eyes_on_one[1] = eyes_on_one[0]
    outside = GOOD.copy()
    outside[3, 1] = 1.4
    nan = GOOD.astype(object).copy()
    nan[2, 0] = "nan"
    text = GOOD.astype(object).copy()
    text[0, 0] = "left"
    rows = [{"lm": GOOD}, {"lm": eyes_on_one}, {"lm": outside}, {"lm": nan}, {"lm": text},
            {"lm": None}]
    root = _manifest(tmp_path / "m", rows)
    ds = create_dataset("manifest", root, "train")
    cached = build_cache(ds, S, tmp_path / "cache")
    assert cached.landmark_counts() == {"template": 5, "real": 1, "detected": 0}
    assert cached.meta["landmark_problems"] == 4
    listed = "\n".join(cached.meta["bad_landmarks"])
    for i, reason in ((1, "degenerate"), (2, "outside"), (3, "finite"), (4, "finite")):
        assert f"img{i}.png: " in listed and reason in listed
    template = RAFDB_TEMPLATE * S
    assert np.allclose(cached.landmark_arrays[0][1], template)
    assert torch.isnan(cached.landmarks([1, 5])).all()  # template rows travel as NaN
    assert not torch.isnan(cached.landmarks([0])).any()
    result = check_dataset("manifest", str(root), splits=["train"])
    split = result.splits[0]
    assert split.landmarks == {"template": 5, "real": 1, "detected": 0}
    assert split.bad_landmarks == 4 and result.ok
    text_report = format_check(result)
    assert "landmarks: template 5, real 1, detected 0" in text_report
    assert "img2.png: landmark mouth_l" in text_report


def test_cache_key_covers_landmarks_and_framing(tmp_path):
    root = _manifest(tmp_path / "m", [{"lm": GOOD}, {"lm": GOOD}])
    ds = create_dataset("manifest", root, "train")
    key = cache_key(ds, (S, S), "bilinear")
    moved = GOOD.copy()
    moved[2, 1] += 0.01
    root2 = _manifest(tmp_path / "m2", [{"lm": GOOD}, {"lm": moved}])
    ds2 = create_dataset("manifest", root2, "train")
    ds2.samples = [s.__class__(ds.samples[i].path, s.label, s.meta)
                   for i, s in enumerate(ds2.samples)]  # same files, other landmarks
    assert cache_key(ds2, (S, S), "bilinear") != key
    ds.framing = Framing("box", 0.1)
    assert cache_key(ds, (S, S), "bilinear") != key


def test_old_cache_without_landmarks_is_rebuilt(tmp_path):
    root = _manifest(tmp_path / "m", [{"lm": GOOD}, {"lm": None}])
    ds = create_dataset("manifest", root, "train")
    first = build_cache(ds, S, tmp_path / "cache")
    first.landmark_path.unlink()
    again = build_cache(ds, S, tmp_path / "cache")
    assert again.landmark_path.is_file() and again.landmark_counts()["real"] == 1
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 3  # images, JSON, landmarks: nothing stale, nothing lost


def _spot_image(points: np.ndarray, size: int = S) -> torch.Tensor:
    """uint8 (3, size, size): a distinct value at the pixel of each landmark."""
    img = torch.zeros(3, size, size, dtype=torch.uint8)
    for k, (x, y) in enumerate(np.rint(points).astype(int)):
        img[:, y, x] = 50 * (k + 1)
    return img


def _assert_points_follow_pixels(img: torch.Tensor, pts: torch.Tensor, flipped: bool) -> None:
    """Each moved point sits on its spot; after a flip point k is the old point FLIP_ORDER[k]."""
    for k, (x, y) in enumerate(pts.round().long().tolist()):
        origin = FLIP_ORDER[k] if flipped else k
        if 0 <= x < img.shape[-1] and 0 <= y < img.shape[-2]:
            assert int(img[0, y, x]) == 50 * (origin + 1), (k, x, y)


def test_flip_crop_moves_and_swaps_landmarks():
    points = np.array([[8, 10], [22, 11], [15, 17], [10, 24], [21, 23]], np.float32)
    img = _spot_image(points)
    flips = 0
    for seed in range(12):
        torch.manual_seed(seed)
        flipped = bool(torch.rand(1) < 0.5)  # FlipCrop's first draw
        torch.manual_seed(seed)
        out, moved = FlipCrop(S, 4)(img, torch.from_numpy(points))
        torch.manual_seed(seed)
        assert torch.equal(FlipCrop(S, 4)(img), out)  # same draws with and without points
        _assert_points_follow_pixels(out, moved, flipped)
        assert moved[0, 0] < moved[1, 0]  # index 0 is still the image-left eye
        flips += flipped
    assert 0 < flips < 12


def test_flip_affine_moves_and_swaps_landmarks():
    points = torch.tensor([[8, 10], [22, 11], [15, 17], [10, 24], [21, 23]], dtype=torch.float32)
    img = torch.zeros(3, S, S, dtype=torch.uint8)
    for k, (x, y) in enumerate(points.long().tolist()):  # 3x3 spots: the affine resamples
        img[:, y - 1 : y + 2, x - 1 : x + 2] = 50 * (k + 1)
    flips = 0
    for seed in range(12):
        torch.manual_seed(seed)
        out, moved = FlipAffine(0.2, (0.8, 1.0))(img, points)
        assert moved[0, 0] < moved[1, 0] and moved[3, 0] < moved[4, 0]
        x, y = moved[0].round().long().tolist()
        flipped = int(out[0, y, x]) == 100  # the old right eye's spot: a flipped image
        _assert_points_follow_pixels(out, moved, flipped)
        flips += flipped
    assert 0 < flips < 12


def test_device_flip_crop_moves_landmarks_with_pixels():
    points = np.array([[8, 10], [22, 11], [15, 17], [10, 24], [21, 23]], np.float32)
    batch = torch.stack([_spot_image(points)] * 6)
    pts = torch.from_numpy(points).expand(6, 5, 2)
    params = flip_crop_params(6, 4, torch.Generator().manual_seed(1))
    out = apply_flip_crop(batch, 4, params)
    moved = move_landmarks(pts, S, 4, params)
    assert params[0].any() and not params[0].all()
    for b in range(6):
        _assert_points_follow_pixels(out[b], moved[b], bool(params[0][b]))
        assert moved[b, 0, 0] < moved[b, 1, 0]
    nan = move_landmarks(torch.full((6, 5, 2), float("nan")), S, 4, params)
    assert torch.isnan(nan).all()
    loader = TensorBatchLoader(batch, torch.zeros(6, dtype=torch.long), 3, padding=4,
                               landmarks=pts.clone())
    for u8, _, lm in loader:
        for b in range(3):
            x, y = lm[b, 0].round().long().tolist()
            flipped = int(u8[b, 0, y, x]) == 100  # the old right eye's spot: a flipped image
            _assert_points_follow_pixels(u8[b], lm[b], flipped)  # all five agree
    with pytest.raises(ValueError, match=r"landmarks \(6, 5, 2\)"):
        TensorBatchLoader(batch, torch.zeros(6, dtype=torch.long), 3, landmarks=pts[:, :4])


def test_image_tensor_dataset_returns_moved_landmarks(tmp_path):
    root = _manifest(tmp_path / "m", [{"lm": GOOD}, {"lm": None}])
    cached = build_cache(create_dataset("manifest", root, "train"), S, tmp_path / "cache")
    plain = ImageTensorDataset(cached)
    assert len(plain[0]) == 2
    image, label, pts = ImageTensorDataset(cached, FlipCrop(S, 4), landmarks=True)[0]
    assert label == 1  # happy
    assert image.shape == (3, S, S) and pts.shape == (5, 2) and not torch.isnan(pts).any()
    assert torch.isnan(ImageTensorDataset(cached, landmarks=True)[1][2]).all()


def test_rafdb_manual_landmarks(tmp_path):
    data = make_rafdb(tmp_path / "raf", lists=False)
    manual = data / "basic" / "Annotation" / "manual"
    manual.mkdir(parents=True)
    # original photos are 14 wide, 20 high: a face turned by a few pixels
    good = np.array([[4, 6], [10, 7], [7, 10], [5, 14], [9, 14]], float)
    (manual / "train_00001_manual.txt").write_text("\n".join(f"{x} {y}" for x, y in good))
    (manual / "train_00002_manual.txt").write_text("3 4\n5 6\n")  # malformed: template
    original = create_dataset("rafdb", data, "train", images="original")
    assert np.allclose(original.landmarks(0, 20, 14), good)
    cached = build_cache(original, (20, 14), tmp_path / "cache")
    assert cached.landmark_counts() == {"template": 7, "real": 1, "detected": 0}
    assert "train_00002" in cached.meta["bad_landmarks"][0]
    assert np.allclose(cached.landmarks([0])[0].numpy(), good, atol=1e-4)
    aligned = create_dataset("rafdb", data, "train")  # 16x16 crops: mapped to the template
    pts = aligned.landmarks(0, 16, 16)
    assert np.abs(pts - RAFDB_TEMPLATE * 16).max() < 1.5 and not np.allclose(pts,
                                                                              RAFDB_TEMPLATE * 16)
    key = cache_key(original, (20, 14), "bilinear")
    (manual / "train_00003_manual.txt").write_text("\n".join(f"{x} {y}" for x, y in good))
    assert cache_key(original, (20, 14), "bilinear") != key  # a new annotation file: rebuild


def test_affectnet_68_points_to_five_in_the_crop(tmp_path):
    make_affectnet_csv(tmp_path, codes_train=(1, 2), codes_val=(0,))
    table = tmp_path / "Manually_Annotated_file_lists" / "training.csv"
    lines = table.read_text().splitlines()
    rng = np.random.default_rng(0)
    pts68 = rng.uniform(3, 10, (68, 2))
    cell = ";".join(f"{v:.2f}" for v in pts68.reshape(-1))
    lines[1] = lines[1].replace('"1.0;2.0;3.0;4.0"', f'"{cell}"')
    table.write_text("\n".join(lines) + "\n")
    ds = create_dataset("affectnet", tmp_path, "train")
    five = from_68(np.round(pts68, 2))
    assert np.allclose(ds.landmarks(0, 8, 10), five - (2, 3))  # the box starts at x=2, y=3
    assert ds.landmarks(1, 8, 10) is None  # the replica's 4-number cell: no landmarks
    assert np.allclose(five[0], np.round(pts68, 2)[36:42].mean(0))
    assert FLIP_ORDER == (1, 0, 2, 4, 3)


def test_landmarks_survive_subsets(tmp_path):
    root = _manifest(tmp_path / "m", [{"lm": None}, {"lm": GOOD}])
    ds = create_dataset("manifest", root, "train").subset([1])
    assert ds.landmarks(0, S, S) is not None
    cached = build_cache(ds, S, tmp_path / "cache")
    assert cached.landmark_arrays[1].tolist() == [REAL] and TEMPLATE == 0


def test_affectnet_npy_landmark_files(tmp_path):
    make_affectnet_npy(tmp_path, codes=(0, 1))
    pts68 = np.random.default_rng(1).uniform(2, 13, (68, 2))
    np.save(tmp_path / "train_set" / "annotations" / "0_lnd.npy", pts68.reshape(-1))
    ds = create_dataset("affectnet", tmp_path, "train")
    assert np.allclose(ds.landmarks(0, 16, 16), from_68(pts68))
    assert ds.landmarks(1, 16, 16) is None
    assert str(tmp_path / "train_set" / "annotations" / "0_lnd.npy") in ds.source_files()


def test_joint_data_sets_keep_their_members_landmarks(tmp_path):
    from fermixnet.data.joint import open_datasets

    a = _manifest(tmp_path / "a", [{"lm": None}, {"lm": GOOD}])
    b = _manifest(tmp_path / "b", [{"lm": GOOD}])
    joint = open_datasets([f"manifest:{a}", f"manifest:{b}"], "train")
    assert [joint.landmarks(i, S, S) is None for i in range(3)] == [True, False, False]
