"""Leakage and duplicate report (`data check`) and `exclude_leaked=1`, on a generated folder set
with planted cross-split copies, a copy with another label, a repeat within a split and a blank
image."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fermixnet.cli import main
from fermixnet.data import create_dataset
from fermixnet.data.duplicates import LEAKED_REASON, Entry, find_duplicates, fingerprint
from fermixnet.engine.datasets import build_test_sets
from fermixnet.labels import CANONICAL


def _save(path: Path, seed: int, *, blank: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if blank:  # near-constant: one grey with +-1 noise
        pixels = (128 + rng.integers(-1, 2, (16, 16, 3))).astype(np.uint8)
    else:
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """train: 6 distinct + a repeat + a blank; test: 4 distinct + 2 copies of train images (one
    under its own class, one under another class); val: 2 distinct."""
    tmp_path = tmp_path / "data"
    for i, cls in enumerate(("happy", "happy", "sad", "sad", "anger", "anger")):
        _save(tmp_path / "train" / cls / f"t{i}.png", i)
    _save(tmp_path / "train" / "anger" / "blank.png", 99, blank=True)
    shutil.copy(tmp_path / "train/sad/t2.png", tmp_path / "train/sad/t2_again.png")
    for i, cls in enumerate(("happy", "sad", "anger", "anger")):
        _save(tmp_path / "test" / cls / f"s{i}.png", 100 + i)
    shutil.copy(tmp_path / "train/happy/t0.png", tmp_path / "test/happy/leak_same.png")
    shutil.copy(tmp_path / "train/anger/t4.png", tmp_path / "test/sad/leak_other.png")
    for i, cls in enumerate(("happy", "sad")):
        _save(tmp_path / "val" / cls / f"v{i}.png", 200 + i)
    return tmp_path


def test_check_counts_leakage_conflicts_and_blanks(planted, capsys):
    status = main(["data", "check", "--data", f"folder:{planted}", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0  # duplicates are warnings, not errors
    dup = report["duplicates"]
    assert dup["cross_split"] == {"train/test": 2}
    assert dup["leaked"] == {"train": 2, "val": 0, "test": 2}
    assert dup["within_split"] == {"train": 1, "val": 0, "test": 0}
    assert (dup["conflicting_groups"], dup["conflicting_images"]) == (1, 2)
    assert dup["blank"] == {"train": 1, "val": 0, "test": 0}
    assert any("test:" in " ".join(g) and "leak_other" in " ".join(g) for g in dup["examples"])
    main(["data", "check", "--data", f"folder:{planted}"])
    text = capsys.readouterr().out
    assert "warning: 2 test images also occur in train" in text
    assert "1 sets of identical images carry different labels (2 images)" in text


def test_exclude_leaked_drops_test_copies_in_eval(planted, tmp_path):
    test = create_dataset("folder", planted, "test", exclude_leaked="1")
    names = sorted(Path(s.path).name for s in test.samples)
    assert names == ["s0.png", "s1.png", "s2.png", "s3.png"]
    assert test.report.skipped[LEAKED_REASON] == 2
    assert "exclude_leaked: 2 of 6 test images dropped (their pixels occur in train, val)" in (
        test.report.notes
    )
    assert len(create_dataset("folder", planted, "test")) == 6
    sets = build_test_sets([f"folder:{planted},exclude_leaked=1"], 16, CANONICAL[:7],
                           tmp_path / "cache")  # fmt: skip
    assert len(sets[0].dataset) == 4  # what eval and train's test pass see
    train = create_dataset("folder", planted, "train", exclude_leaked="yes")
    assert len(train) == 6  # t0 and t4 dropped from train instead
    with pytest.raises(ValueError, match="exclude_leaked"):
        create_dataset("folder", planted, "all", exclude_leaked="1")
    (planted / "train" / "fear").mkdir()  # train can no longer be read: never compare silently
    with pytest.raises(ValueError, match="holds no images"):
        create_dataset("folder", planted, "test", exclude_leaked="1")


def test_fingerprint_is_of_pixels_and_shape():
    a = np.zeros((4, 6, 3), np.uint8)
    assert fingerprint(a).digest == fingerprint(a.copy()).digest
    assert fingerprint(a).digest != fingerprint(a.reshape(6, 4, 3)).digest
    ramp = np.arange(72, dtype=np.uint8).reshape(4, 6, 3)
    assert fingerprint(a).blank and not fingerprint(ramp).blank


def test_three_splits_share_one_image():
    p = fingerprint(np.ones((2, 2, 3), np.uint8) * 7)
    q = fingerprint(np.arange(12, dtype=np.uint8).reshape(2, 2, 3))
    entries = [Entry("train", "a", 0, p), Entry("val", "b", 0, p), Entry("test", "c", 0, p),
               Entry("test", "d", 0, p), Entry("test", "e", 1, q)]  # fmt: skip
    report = find_duplicates(entries)
    assert report.cross_split == {"train/val": 1, "train/test": 2, "val/test": 2}
    assert report.leaked == {"train": 1, "val": 1, "test": 2}
    assert report.within_split == {"train": 0, "val": 0, "test": 1}
    assert report.conflicting_groups == 0 and report.blank == {"train": 1, "val": 1, "test": 2}
