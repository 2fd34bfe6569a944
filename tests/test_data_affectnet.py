"""AffectNet: CSV release with face-box crops, the npy release, codes 8-10, balancing."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from data_replicas import make_affectnet_csv, make_affectnet_npy
from fermixnet.data import create_dataset
from fermixnet.data.imageio import read_rgb
from fermixnet.data.sampling import balanced_sampler, class_balanced_downsample, class_weights


def test_affectnet_csv_codes_and_crop(tmp_path):
    make_affectnet_csv(tmp_path)
    seven = create_dataset("affectnet", tmp_path, "train")
    assert sorted(Counter(seven.labels().tolist()).items()) == [
        (0, 1), (1, 3), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1)
    ]  # fmt: skip
    skipped = seven.report.skipped
    assert skipped["code 8 (none)"] == skipped["code 9 (uncertain)"] == 1
    assert skipped["code 10 (no face)"] == 1 and skipped["contempt (AffectNet-7)"] == 1
    # face box x=2, y=3, w=10, h=8 cropped from a 16x20 image
    crop = seven.load(0)
    full = read_rgb(seven.samples[0].path)  # JPEG: compare with the decoded file
    assert full.shape == (16, 20, 3)
    np.testing.assert_array_equal(crop, full[3:11, 2:12])
    eight = create_dataset("affectnet", tmp_path, "val", num_classes=8)
    assert eight.labels().tolist() == [0, 6, 7] and eight.classes[-1] == "contempt"
    assert eight.report.expected == 4000
    assert create_dataset("affectnet", tmp_path, "test").report.expected == 3500


def test_affectnet_csv_errors(tmp_path):
    make_affectnet_csv(tmp_path, codes_train=(0, 12))
    with pytest.raises(ValueError, match=r"training.csv:3: expression code 12 is out of range"):
        create_dataset("affectnet", tmp_path, "train")
    assert len(create_dataset("affectnet", tmp_path, "train", skip_bad=True)) == 1
    table = tmp_path / "Manually_Annotated_file_lists" / "training.csv"
    table.write_text(table.read_text().replace("2,3,10,8", "2,x,10,8", 1))
    with pytest.raises(ValueError, match=r"training.csv:2: .*'x'"):
        create_dataset("affectnet", tmp_path, "train")
    make_affectnet_csv(tmp_path / "b", codes_train=(1, 2))
    first = sorted((tmp_path / "b" / "Manually_Annotated_Images").rglob("*.jpg"))[0]
    first.unlink()
    with pytest.raises(FileNotFoundError, match=r"training.csv:\d: image .* not found"):
        create_dataset("affectnet", tmp_path / "b", "train")


def test_affectnet_npy_release(tmp_path):
    make_affectnet_npy(tmp_path)
    train = create_dataset("affectnet", tmp_path, "train")
    assert train.labels().tolist() == [0, 1]  # 7 contempt and 9 uncertain dropped
    assert train.load(0).shape == (16, 16, 3)
    eight = create_dataset("affectnet", tmp_path, "val", num_classes=8)
    assert eight.labels().tolist() == [0, 1, 7]
    (tmp_path / "val_set" / "annotations" / "0_exp.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"0_exp\.npy"):
        create_dataset("affectnet", tmp_path, "val")


def test_affectnet_lists_and_downsample(tmp_path):
    make_affectnet_csv(tmp_path)
    (tmp_path / "occlusion_affectnet_list.txt").write_text(f"val/0/{0 + 13:040x}/\n")
    (tmp_path / "pose_30_affectnet_list.txt").write_text(f"6/{14:040x}.jpg\n")
    val = create_dataset("affectnet", tmp_path, "val")
    assert val.subsets()["occluded"] == [0] and val.subsets()["pose>30"] == [1]
    balanced = create_dataset("affectnet", tmp_path, "train", balance="downsample", seed=3)
    assert set(Counter(balanced.labels().tolist()).values()) == {1}
    assert balanced.report.skipped["down-sampled (balance)"] == 2
    np.testing.assert_array_equal(balanced.load(0), balanced.load(0))


def test_class_balanced_downsample_and_sampler():
    labels = [0] * 50 + [1] * 10 + [2] * 5
    keep = class_balanced_downsample(labels, seed=0)
    assert Counter(labels[i] for i in keep) == {0: 5, 1: 5, 2: 5}
    assert keep == class_balanced_downsample(labels, seed=0)
    assert keep != class_balanced_downsample(labels, seed=1)
    capped = class_balanced_downsample(labels, seed=0, max_per_class=8)
    assert Counter(labels[i] for i in capped) == {0: 8, 1: 8, 2: 5}
    weights = class_weights(labels, 4)
    assert weights[3] == 0 and weights[2] == pytest.approx(10 * weights[0])
    sampler = balanced_sampler(labels, num_samples=3000, seed=0)
    drawn = Counter(labels[i] for i in sampler)
    assert all(800 < drawn[c] < 1200 for c in range(3))
    assert list(balanced_sampler(labels, 20, seed=4)) == list(balanced_sampler(labels, 20, seed=4))
