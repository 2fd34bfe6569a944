"""Engine data plumbing: tiny generated manifests, stratified validation split, down-sampling,
test sets with subsets (`make_manifest` is a fixture of conftest.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from fermixnet.config import load_config
from fermixnet.engine.datasets import build_test_sets, build_train_data, stratified_split
from fermixnet.labels import CANONICAL


def test_stratified_split_is_seeded_and_per_class():
    labels = [0] * 10 + [1] * 20 + [2] * 1
    train, val = stratified_split(labels, 0.1, seed=3)
    assert sorted(train + val) == list(range(31))
    assert Counter(labels[i] for i in val) == {0: 1, 1: 2}
    assert stratified_split(labels, 0.1, seed=3) == (train, val)
    assert stratified_split(labels, 0.1, seed=4)[1] != val


def test_train_data_carves_validation_and_downsamples(tmp_path, make_manifest):
    root = make_manifest(tmp_path / "d", per_class=10)
    cfg = load_config(None, [f"data.train=manifest:{root}", "data.val_fraction=0.2",
                             "model.input_size=32"])
    data = build_train_data(cfg, tmp_path / "cache", None)
    assert len(data.train) == 56 and len(data.val) == 14
    x, _ = data.train[0]
    assert x.dtype.is_floating_point is False and tuple(x.shape) == (3, 32, 32)
    # Unbalance it: drop most "happy" rows, then down-sampling caps every class at that count.
    lines = (root / "manifest.csv").read_text().splitlines()
    kept = [ln for ln in lines if not (ln.startswith("train/happy_") and ln[12] not in "01")]
    (root / "manifest.csv").write_text("\n".join(kept) + "\n")
    cfg = load_config(None, [f"data.train=manifest:{root}", "data.val_fraction=0",
                             "data.balance=downsample", "model.input_size=32"])
    data = build_train_data(cfg, tmp_path / "cache", None)
    assert Counter(data.train_labels) == {c: 2 for c in range(7)} and data.val is None


def test_test_sets_expose_subsets(tmp_path, make_manifest):
    root = make_manifest(tmp_path / "d")
    (t,) = build_test_sets([f"manifest:{root}"], 32, CANONICAL[:7], tmp_path / "cache")
    assert t.name == "d"  # the root's folder name
    assert "occluded" in t.subsets and "occlusion=upper" in t.subsets
    assert len(t.dataset) == 21


def test_missing_root_and_wrong_classes_are_named(tmp_path, make_manifest):
    cfg = load_config(None, [f"data.train=manifest:{tmp_path / 'nope'}"])
    with pytest.raises(FileNotFoundError, match=r"data\.train.*nope"):
        build_train_data(cfg, tmp_path / "cache", None)
    root = make_manifest(tmp_path / "d")
    with pytest.raises(ValueError, match="classes"):
        build_test_sets([f"manifest:{root}"], 32, CANONICAL[:8], tmp_path / "cache")


def test_a_validation_share_that_holds_out_nothing_is_refused(tmp_path, make_manifest):
    # one image per class: the stratified split holds none out, and selection would have no data
    root = make_manifest(tmp_path / "d", per_class=1)
    cfg = load_config(None, [f"data.train=manifest:{root}", "data.val_fraction=0.1",
                             "model.input_size=32"])
    with pytest.raises(ValueError, match=r"data\.val_fraction=0\.1 holds out no image"):
        build_train_data(cfg, tmp_path / "cache", None)
