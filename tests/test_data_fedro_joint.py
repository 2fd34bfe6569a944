"""FED-RO (with its `neural` folder) and joint RAF-DB + AffectNet training sets."""

from __future__ import annotations

import pytest

from data_replicas import (
    FEDRO_FOLDERS,
    make_affectnet_csv,
    make_fedro,
    make_rafdb,
    write_image,
)
from fermixnet.data import create_dataset
from fermixnet.data.cache import build_cache
from fermixnet.data.joint import ConcatFERDataset, open_datasets


def test_fedro_neural_folder_and_count_note(tmp_path):
    make_fedro(tmp_path, per_class=2)
    ds = create_dataset("fedro", tmp_path)
    assert len(ds) == 2 * len(FEDRO_FOLDERS) and ds.classes == ds.classes[:7]
    assert ds.class_counts()["neutral"] == 2  # from the misspelt `neural` folder
    assert ds.report.expected == 400
    assert "found 14 images, 400 expected" in ds.report.notes
    assert ds.subsets()["occluded"] == list(range(len(ds)))


def test_fedro_bad_layouts(tmp_path):
    make_fedro(tmp_path)
    (tmp_path / "FED-RO" / "sad_empty").mkdir()
    with pytest.raises(ValueError, match="sad_empty"):
        create_dataset("fedro", tmp_path)
    (tmp_path / "FED-RO" / "sad_empty").rmdir()
    (tmp_path / "FED-RO" / "contempt").mkdir()
    write_image(tmp_path / "FED-RO" / "contempt" / "x.jpg")
    with pytest.raises(ValueError, match="FED-RO has 7 classes"):
        create_dataset("fedro", tmp_path)
    with pytest.raises(ValueError, match="split must be one of test, all"):
        create_dataset("fedro", tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="no class folders"):
        create_dataset("fedro", tmp_path / "FED-RO" / "contempt")


def test_joint_rafdb_affectnet(tmp_path):
    make_rafdb(tmp_path / "raf", lists=False)
    make_affectnet_csv(tmp_path / "aff")
    raf = create_dataset("rafdb", tmp_path / "raf", "train")
    aff8 = create_dataset("affectnet", tmp_path / "aff", "train", num_classes=8)
    joint = ConcatFERDataset([raf, aff8])
    assert joint.classes == raf.classes  # 7-class union
    assert len(joint) == len(raf) + len(aff8) - 1
    assert joint.report.skipped["contempt from affectnet (7-class protocol)"] == 1
    assert joint.samples[0].meta["source"] == "rafdb"
    assert joint.samples[-1].meta["source"] == "affectnet"
    assert joint.load(len(raf)).shape == aff8.load(0).shape
    assert ConcatFERDataset([raf, aff8], num_classes=8).classes[-1] == "contempt"
    cached = build_cache(joint, 8, tmp_path / "cache")
    assert cached.labels.tolist() == joint.labels().tolist()
    specs = [f"rafdb:{tmp_path / 'raf'}", f"affectnet:{tmp_path / 'aff'},num_classes=8"]
    assert open_datasets(specs, "train").labels().tolist() == joint.labels().tolist()
    assert open_datasets(specs[:1], "train").name == "rafdb"
