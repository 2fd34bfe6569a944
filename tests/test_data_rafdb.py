"""RAF-DB basic and its occlusion/pose subset lists, on a small on-disk replica."""

from __future__ import annotations

import pytest

from data_replicas import RAFDB_TEST, RAFDB_TRAIN, make_rafdb
from fermixnet import labels
from fermixnet.data import create_dataset
from fermixnet.data.subsets import read_label_file, read_subset_list, stem_key


def _names(ds):
    return [ds.classes[i] for i in ds.labels()]


def test_rafdb_counts_labels_and_paths(tmp_path):
    make_rafdb(tmp_path)
    train = create_dataset("rafdb", tmp_path, "train")
    assert len(train) == len(RAFDB_TRAIN) and train.report.expected == 12271
    # RAF-DB codes 1..7 = surprise, fear, disgust, happy, sad, anger, neutral
    raf_order = ["surprise", "fear", "disgust", "happy", "sad", "anger", "neutral"]
    assert _names(train) == [raf_order[lab - 1] for _, lab in RAFDB_TRAIN]
    assert train.samples[0].path.endswith("Image/aligned/train_00001_aligned.jpg")
    assert train.load(0).shape == (16, 16, 3) and train.expected_size == (100, 100)
    assert any("8 images, 12271 expected" in n for n in train.report.notes)
    original = create_dataset("rafdb", tmp_path / "basic", "test", images="original")
    assert len(original) == len(RAFDB_TEST)
    assert original.samples[0].path.endswith("Image/original/test_0001.jpg")
    assert original.load(0).shape == (20, 14, 3)


def test_rafdb_list_naming_with_aligned_suffix(tmp_path):
    make_rafdb(tmp_path, lists=False)
    label_file = tmp_path / "basic" / "EmoLabel" / "list_patition_label.txt"
    text = label_file.read_text().replace("train_00001.jpg", "train_00001_aligned.jpg")
    label_file.write_text(text)
    train = create_dataset("rafdb", tmp_path, "train")
    assert train.samples[0].path.endswith("train_00001_aligned.jpg")
    assert len(train) == len(RAFDB_TRAIN)


def test_rafdb_occlusion_and_pose_lists(tmp_path):
    make_rafdb(tmp_path)
    test = create_dataset("rafdb", tmp_path, "test")
    subsets = test.subsets()
    stems = [stem_key(s.path) for s in test.samples]
    assert [stems[i] for i in subsets["occluded"]] == ["test_0001", "test_0002", "test_0003"]
    assert [stems[i] for i in subsets["pose>30"]] == ["test_0004", "test_0005"]
    assert [stems[i] for i in subsets["pose>45"]] == ["test_0005"]
    occ = test.report.lists["rafdb_occlusion_list.txt"]
    assert occ == {"entries": 4, "duplicates": 1, "found": 3, "missing": 1,
                   "label_mismatches": occ["label_mismatches"]}  # fmt: skip
    # The list's 0-based labels agree with the label file except where the replica differs.
    expected = sum(
        labels.RAFDB0_TO_CANONICAL[lab] != labels.RAFDB_TO_CANONICAL[RAFDB_TEST[k][1]]
        for k, lab in ((0, 3), (1, 4), (2, 5))
    )
    assert occ["label_mismatches"] == expected
    assert test.samples[0].meta["occlusion_code"] == "4"
    only = create_dataset("rafdb", tmp_path, "test", only="pose>30")
    assert len(only) == 2


def test_paper_occlusion_type_split(tmp_path):
    make_rafdb(tmp_path)
    split = tmp_path / "types.txt"
    split.write_text("test_0001_aligned.jpg UL\ntest_0002 corner\ntest_0003,left_right\n")
    test = create_dataset("rafdb", tmp_path, "test", occlusion_type_list=str(split))
    subsets = test.subsets()
    assert [len(subsets[f"occlusion_type={t}"]) for t in ("UL", "LR", "C")] == [1, 1, 1]
    split.write_text("test_0001 UL\ntest_0002 diagonal\n")
    with pytest.raises(ValueError, match=r"types.txt:2: expected '<image> <UL\|LR\|C>'"):
        create_dataset("rafdb", tmp_path, "test", occlusion_type_list=str(split))


def test_pose_companion_label_file(tmp_path):
    make_rafdb(tmp_path)
    assert read_label_file(tmp_path / "val_raf_db_label.txt") == [0, 6]
    (tmp_path / "val_raf_db_label.txt").write_text("2 7\n0\n5\n")
    with pytest.raises(ValueError, match=r"val_raf_db_label.txt:3: label 5 differs"):
        create_dataset("rafdb", tmp_path, "test")
    (tmp_path / "val_raf_db_label.txt").write_text("3 7\n0\n6\n")
    with pytest.raises(ValueError, match="header says 3 labels, found 2"):
        create_dataset("rafdb", tmp_path, "test")
    (tmp_path / "val_raf_db_label.txt").write_text("0\n6\n")
    with pytest.raises(ValueError, match=r":1: expected a header 'N K'"):
        create_dataset("rafdb", tmp_path, "test")


def test_subset_list_malformed_line(tmp_path):
    path = tmp_path / "occ.txt"
    path.write_text("test_0001_aligned 3 4\ntest_0002_aligned three 4\n")
    with pytest.raises(ValueError, match=r"occ.txt:2: expected an integer, got 'three'"):
        read_subset_list(path, "occlusion")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("train_00009.jpg 8", r"list_patition_label.txt:15: label '8' is out of range 1..7"),
        ("train_00009.jpg", r"list_patition_label.txt:15: expected '<train\|test>_NNNNN.jpg"),
        ("train_00042.jpg 2", r"list_patition_label.txt:15: image .*train_00042_aligned.jpg"),
    ],
)
def test_rafdb_bad_lines(tmp_path, line, message):
    make_rafdb(tmp_path, extra_lines=line + "\n", lists=False)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        create_dataset("rafdb", tmp_path, "train")
    ds = create_dataset("rafdb", tmp_path, "train", skip_bad="true")
    assert len(ds) == len(RAFDB_TRAIN) and sum(ds.report.skipped.values()) == 1


def test_rafdb_missing_layout_and_split(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"list_patition_label\.txt not found"):
        create_dataset("rafdb", tmp_path, "train")
    make_rafdb(tmp_path, lists=False)
    with pytest.raises(ValueError, match="split must be one of train, test"):
        create_dataset("rafdb", tmp_path, "val")


def test_duplicated_label_line_is_reported_by_check(tmp_path):
    from fermixnet.data.check import check_dataset

    make_rafdb(tmp_path, extra_lines="train_00002.jpg 2\n", lists=False)
    result = check_dataset("rafdb", str(tmp_path), splits=["train"])
    assert result.ok and result.splits[0].duplicate_entries == 1
    assert result.splits[0].images == len(RAFDB_TRAIN) + 1


def test_lists_of_another_split_are_ignored_unless_named(tmp_path):
    make_rafdb(tmp_path)
    train = create_dataset("rafdb", tmp_path, "train")
    assert train.report.lists == {} and "occluded" not in train.subsets()
    named = create_dataset(
        "rafdb", tmp_path, "train", occlusion_list=str(tmp_path / "rafdb_occlusion_list.txt")
    )
    assert named.report.lists["rafdb_occlusion_list.txt"]["found"] == 0
