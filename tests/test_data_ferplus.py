"""FERPlus: vote rules, the CSV pair and the folder layout, on small replicas."""

from __future__ import annotations

import numpy as np
import pytest

from data_replicas import (
    FERPLUS_ROWS,
    image_array,
    make_ferplus_csv,
    make_ferplus_folders,
)
from fermixnet.data import create_dataset
from fermixnet.data.ferplus_votes import vote_label


@pytest.mark.parametrize(
    ("votes", "rule", "tie", "expected"),
    [
        ([4, 0, 0, 1, 3, 2, 0, 0, 0, 0], "max", "drop", (0, "")),
        ([4, 0, 0, 4, 2, 0, 0, 0, 0, 0], "max", "drop", (None, "tie")),
        ([4, 0, 0, 4, 2, 0, 0, 0, 0, 0], "max", "first", (0, "")),
        ([1, 0, 0, 0, 0, 0, 0, 0, 4, 5], "max", "drop", (None, "not a face (NF >= half)")),
        ([2, 0, 0, 0, 0, 0, 0, 0, 6, 2], "max", "drop", (None, "unknown/NF wins")),
        ([3, 0, 0, 0, 0, 0, 0, 0, 3, 4], "max", "drop", (None, "unknown/NF wins")),
        ([3, 0, 0, 0, 0, 0, 0, 0, 3, 0], "max", "drop", (0, "")),  # unknown ties: emotion kept
        ([0] * 10, "max", "drop", (None, "no votes")),
        # majority: single votes removed, winner needs more than half of the rest
        ([4, 0, 0, 1, 3, 2, 0, 0, 0, 0], "majority", "drop", (None, "no majority")),
        ([6, 1, 1, 0, 2, 0, 0, 0, 0, 0], "majority", "drop", (0, "")),
        ([1, 1, 1, 0, 0, 0, 0, 0, 7, 0], "majority", "drop", (None, "unknown/NF wins")),
    ],
)
def test_vote_rules(votes, rule, tie, expected):
    assert vote_label(votes, rule, tie) == expected


def test_random_ties_are_seeded_per_image():
    votes = [3, 0, 0, 3, 0, 0, 3, 0, 1, 0]
    picks = {vote_label(votes, "max", "random", seed=1, key=f"fer{i}")[0] for i in range(40)}
    assert picks == {0, 3, 6}
    def draw():
        return [vote_label(votes, "max", "random", seed=1, key=f"fer{i}")[0] for i in range(40)]

    assert draw() == draw()
    with pytest.raises(ValueError, match="tie rule"):
        vote_label(votes, "max", "coin")


def test_ferplus_csv_layout(tmp_path):
    make_ferplus_csv(tmp_path)
    train = create_dataset("ferplus", tmp_path, "train")
    assert [s.meta["image_name"] for s in train.samples] == [
        "fer0000000.png", "fer0000001.png", "fer0000005.png"
    ]  # fmt: skip
    assert [train.classes[i] for i in train.labels()] == ["neutral", "happy", "contempt"]
    skipped = train.report.skipped
    assert skipped["votes: tie"] == 1 and skipped["votes: not a face (NF >= half)"] == 1
    assert skipped["removed by FERPlus (no image name)"] == 1
    image = train.load(1)  # second kept row is row 1 of the CSVs
    assert image.shape == (48, 48, 3) and (image[..., 0] == image[..., 2]).all()
    np.testing.assert_array_equal(image[..., 0], image_array(1, 48, 48)[..., 0])
    val = create_dataset("ferplus", tmp_path, "val")
    assert len(val) == 1 and val.report.skipped["votes: unknown/NF wins"] == 1
    test = create_dataset("ferplus", tmp_path, "test", num_classes=7)
    assert [test.classes[i] for i in test.labels()] == ["anger", "fear"]
    seven = create_dataset("ferplus", tmp_path, "train", num_classes="7", tie="first")
    assert seven.report.skipped["contempt (7-class protocol)"] == 1 and len(seven) == 3


def test_ferplus_folder_layout_matches_csv(tmp_path):
    make_ferplus_folders(tmp_path / "folders")
    make_ferplus_csv(tmp_path / "csv")
    for split in ("train", "val", "test"):
        a = create_dataset("ferplus", tmp_path / "folders", split)
        b = create_dataset("ferplus", tmp_path / "csv", split)
        assert a.labels().tolist() == b.labels().tolist()
        np.testing.assert_array_equal(a.load(0), b.load(0))
    assert a.samples[0].path.endswith("FER2013Test/fer0000008.png")


def test_ferplus_ran_lists(tmp_path):
    make_ferplus_csv(tmp_path)
    (tmp_path / "jianfei_occlusion_list.txt").write_text(
        "4_fer0000008.png 8 0\n0_fer0000009.png 8 2\n3_fer0099999.png 8 1\n"
    )
    (tmp_path / "pose_30_ferplus_list.txt").write_text("6/fer0000009.jpg\n")
    test = create_dataset("ferplus", tmp_path, "test")
    assert test.subsets()["occluded"] == [0, 1] and test.subsets()["pose>30"] == [1]
    counts = test.report.lists["jianfei_occlusion_list.txt"]
    assert (counts["found"], counts["missing"], counts["label_mismatches"]) == (2, 1, 1)


def test_ferplus_errors(tmp_path):
    rows = [*FERPLUS_ROWS[:2], ("Training", "fer0000002.png", [1, 2, 3], 0)]
    with pytest.raises(ValueError, match="expected 12 fields"):
        create_dataset("ferplus", make_ferplus_csv(tmp_path / "a", rows), "train")
    make_ferplus_csv(tmp_path / "b")
    text = (tmp_path / "b" / "fer2013.csv").read_text().splitlines()
    text[2] = text[2].replace("Training", "PublicTest")
    (tmp_path / "b" / "fer2013.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"fer2013new.csv:3: Usage 'Training' differs"):
        create_dataset("ferplus", tmp_path / "b", "train")
    make_ferplus_csv(tmp_path / "c")
    text = (tmp_path / "c" / "fer2013.csv").read_text().splitlines()
    text[1] = text[1].replace('"', '"1 2 ', 1)
    (tmp_path / "c" / "fer2013.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"fer2013.csv:2: expected 2304 space-separated"):
        create_dataset("ferplus", tmp_path / "c", "train")
    assert len(create_dataset("ferplus", tmp_path / "c", "train", skip_bad=1)) == 2
    with pytest.raises(FileNotFoundError, match=r"neither fer2013\.csv"):
        create_dataset("ferplus", tmp_path / "a" / "..", "train", layout="csv")


def test_ferplus_files_of_unequal_length_are_an_error(tmp_path):
    make_ferplus_csv(tmp_path)
    new = tmp_path / "fer2013new.csv"
    new.write_text("\n".join(new.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(ValueError, match=r"fer2013new\.csv ends at line \d+ but its companion"):
        create_dataset("ferplus", tmp_path, "test")


def test_ferplus_folders_without_label_csv_use_fer2013new(tmp_path):
    make_ferplus_folders(tmp_path)
    make_ferplus_csv(tmp_path)  # fer2013new.csv next to the folders
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        (tmp_path / folder / "label.csv").unlink()
    train = create_dataset("ferplus", tmp_path, "train")
    assert train.samples[0].path.endswith("FER2013Train/fer0000000.png")
    assert train.labels().tolist() == create_dataset(
        "ferplus", tmp_path, "train", layout="csv"
    ).labels().tolist()


def test_ferplus_check_decodes_csv_pixels(tmp_path):
    from fermixnet.data.check import check_dataset

    make_ferplus_csv(tmp_path)
    result = check_dataset("ferplus", str(tmp_path))
    assert result.ok and [s.images for s in result.splits] == [3, 1, 2]
    assert result.splits[0].kinds == {"grayscale": 3} and result.splits[0].wrong_size == 0
