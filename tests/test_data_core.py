"""Core data API: image decoding, folder and manifest adapters, data specs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from data_replicas import (
    image_array,
    make_folder_tree,
    write_corrupt,
    write_image,
    write_truncated_jpeg,
)
from fermixnet.data import create_dataset, list_datasets, parse_data_spec
from fermixnet.data.imageio import ImageReadError, probe, read_rgb


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "CMYK", "P", "I;16"])
def test_read_rgb_converts_every_mode(tmp_path, mode):
    ext = "jpg" if mode == "CMYK" else "png"
    path = write_image(tmp_path / f"x.{ext}", seed=1, mode=mode)
    image = read_rgb(path)
    assert image.dtype == np.uint8 and image.shape == (12, 10, 3)
    if mode in ("L", "I;16"):  # gray replicated into three equal channels
        assert (image[..., 0] == image[..., 2]).all()
    if mode == "I;16":  # 16-bit values v*257 scale back to v
        np.testing.assert_array_equal(image[..., 0], image_array(1)[..., 0])
    if mode == "RGBA":
        np.testing.assert_array_equal(image, image_array(1))


def test_read_rgb_applies_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(image_array(2, 12, 10)).save(tmp_path / "r.jpg", exif=exif)
    assert read_rgb(tmp_path / "r.jpg").shape == (10, 12, 3)


def test_bad_images_raise_named_errors(tmp_path):
    with pytest.raises(ImageReadError, match=r"t\.jpg"):
        read_rgb(write_truncated_jpeg(tmp_path / "t.jpg"))
    with pytest.raises(ImageReadError, match=r"c\.png"):
        probe(write_corrupt(tmp_path / "c.png"))
    with pytest.raises(FileNotFoundError, match=r"gone\.png"):
        read_rgb(tmp_path / "gone.png")


def test_folder_adapter_counts_and_aliases(tmp_path):
    make_folder_tree(
        tmp_path, {"train": {"Happy": 2, "neural": 3}, "val": {"anger": 1, "contempt": 1}}
    )
    train = create_dataset("folder", tmp_path, "train")
    assert train.classes[-1] == "contempt"  # contempt in another split makes it 8-class
    assert train.class_counts()["happy"] == 2 and train.class_counts()["neutral"] == 3
    val = create_dataset("folder", tmp_path, "valid")
    assert sorted(val.labels().tolist()) == [6, 7]
    image, label = train[0]
    assert image.shape == (12, 10, 3) and label == train.samples[0].label


def test_folder_adapter_errors(tmp_path):
    make_folder_tree(tmp_path, {"train": {"happy": 1, "sad": 0}})
    with pytest.raises(ValueError, match="holds no images"):
        create_dataset("folder", tmp_path, "train")
    ds = create_dataset("folder", tmp_path, "train", skip_bad="1")
    assert ds.report.skipped["empty class folder"] == 1 and len(ds) == 1
    with pytest.raises(FileNotFoundError, match="no 'test' split folder"):
        create_dataset("folder", tmp_path, "test")
    make_folder_tree(tmp_path / "b", {"train": {"smirk": 1}})
    with pytest.raises(ValueError, match="unknown expression label 'smirk'"):
        create_dataset("folder", tmp_path / "b", "train")
    ds = create_dataset("folder", tmp_path / "b", "train", class_map="smirk:happy")
    assert ds.labels().tolist() == [1]


def test_folder_numeric_names_with_preset(tmp_path):
    make_folder_tree(tmp_path, {"test": {"1": 1, "7": 1}})
    ds = create_dataset("folder", tmp_path, "test", class_map="rafdb")
    assert sorted(ds.classes[i] for i in ds.labels()) == ["neutral", "surprise"]


def _manifest(tmp_path, rows, header="path,label,split,occlusion,occluder"):
    for i in range(4):
        write_image(tmp_path / "img" / f"{i}.png", seed=i)
    (tmp_path / "manifest.csv").write_text(header + "\n" + "\n".join(rows) + "\n")


def test_manifest_adapter_meta_and_subsets(tmp_path):
    _manifest(tmp_path, [
        "img/0.png,happy,train,none,",
        "img/1.png,3,test,upper,sunglasses",
        "img/2.png,neural,test,none,",
        "img/3.png,anger,test,lower,mask",
    ])  # fmt: skip
    test = create_dataset("manifest", tmp_path, "test")
    assert test.labels().tolist() == [3, 0, 6]
    subsets = test.subsets()
    assert subsets["occluded"] == [0, 2]
    assert subsets["occlusion=upper"] == [0] and subsets["occluder=mask"] == [2]
    assert subsets["occlusion=none"] == [1]
    lower = create_dataset("manifest", tmp_path, "test", only="occlusion=lower")
    assert lower.labels().tolist() == [6]
    assert len(create_dataset("manifest", tmp_path / "manifest.csv", "all")) == 4


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("img/1.png,smirk,test,none,", r"manifest.csv:3: unknown expression label"),
        ("img/1.png,9,test,none,", r"manifest.csv:3: label '9' is out of range"),
        ("img/1.png,happy,holdout,none,", r"manifest.csv:3: split 'holdout'"),
        ("img/9.png,happy,test,none,", r"manifest.csv:3: image .*9.png not found"),
        ("img/1.png,happy", r"manifest.csv:3: wrong number of fields"),
    ],
)
def test_manifest_errors_name_file_and_line(tmp_path, row, message):
    _manifest(tmp_path, ["img/0.png,happy,train,none,", row])
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        create_dataset("manifest", tmp_path, "all")
    ds = create_dataset("manifest", tmp_path, "all", skip_bad=True)
    assert len(ds) == 1 and sum(ds.report.skipped.values()) == 1


def test_manifest_header_and_split_column(tmp_path):
    _manifest(tmp_path, ["img/0.png,happy"], header="file,label")
    with pytest.raises(ValueError, match="lacks column"):
        create_dataset("manifest", tmp_path, "all")
    _manifest(tmp_path, ["img/0.png,happy"], header="path,label")
    with pytest.raises(ValueError, match="only split=all"):
        create_dataset("manifest", tmp_path, "train")


def test_parse_data_spec_and_registry(tmp_path):
    assert parse_data_spec("rafdb:/d/RAF,images=original,skip_bad=1") == (
        "rafdb", "/d/RAF", {"images": "original", "skip_bad": "1"},
    )  # fmt: skip
    for bad in ("/just/a/path", "rafdb:", "rafdb:/x,flag"):
        with pytest.raises(ValueError, match="data spec"):
            parse_data_spec(bad)
    assert {"folder", "manifest"} <= set(list_datasets())
    with pytest.raises(ValueError, match="unknown data set 'nope'"):
        create_dataset("nope", tmp_path)
    with pytest.raises(ValueError, match="unknown option"):
        create_dataset("folder", tmp_path, "train", colour="blue")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_dataset("folder", tmp_path / "missing")


def test_replica_images_are_reproducible(tmp_path):
    a = write_image(tmp_path / "a.png", seed=3)
    b = write_image(tmp_path / "b.png", seed=3)
    assert a.read_bytes() == b.read_bytes()
    assert np.asarray(Image.open(a)).shape == (12, 10, 3)
