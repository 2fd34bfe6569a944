"""`fermixnet train` rejects a bad config before any work (issue 12: checks before work): before
an image cache is built or a model is made (both replaced here by functions that fail the test),
naming the key and the `--set` that fixes it. That is what makes the answer come in well under a
second; the tests check the order, not the clock, which a busy CPU would decide."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fermixnet.data.cache
import fermixnet.models
from fermixnet.cli import main
from fermixnet.labels import CANONICAL


@pytest.fixture
def recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid recipe over a real 7-image manifest; building any image cache fails the test."""
    root = tmp_path / "data"
    (root / "train").mkdir(parents=True)
    rows = []
    for c, name in enumerate(CANONICAL[:7]):
        Image.fromarray(np.full((8, 8, 3), 30 * c, np.uint8)).save(root / "train" / f"{c}.png")
        rows.append([f"train/{c}.png", name, "train"])
    with open(root / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "label", "split"], *rows])

    def no_cache(*args, **kwargs):
        raise AssertionError("an image cache was built before the config was checked")

    def no_model(*args, **kwargs):
        raise AssertionError("a model was made before the config was checked")

    monkeypatch.setattr(fermixnet.data.cache, "build_cache", no_cache)
    monkeypatch.setattr(fermixnet.models, "create_model", no_model)
    path = tmp_path / "tiny.yaml"
    path.write_text(f"""
model: {{name: resnet18, num_classes: 7, input_size: 16}}
data: {{train: ["manifest:{root}"], val_fraction: 0.0, workers: 0,
        cache_dir: "{tmp_path / 'cache'}"}}
train: {{epochs: 1, batch_size: 4, device: cpu}}
""")
    return path


def _train(recipe: Path, out: Path, *overrides: str) -> int:
    """Exit status of `fermixnet train` with ``overrides``."""
    return main(["train", "--config", str(recipe), "--out", str(out), "--set", *overrides])


def test_mistyped_pretrained_path_fails_before_any_cache(recipe, tmp_path, capsys):
    rc = _train(recipe, tmp_path / "run", "model.pretrained=/no/such/resnet18_ms.pth")
    err = capsys.readouterr().err
    assert rc == 2
    assert "'model.pretrained'" in err and "/no/such/resnet18_ms.pth" in err
    assert "--set model.pretrained=" in err
    assert not (tmp_path / "run").exists()


def test_on_device_with_an_unsupported_preset_fails_before_any_cache(recipe, tmp_path, capsys):
    rc = _train(recipe, tmp_path / "run", "data.on_device=true",
                         "aug.preset=flip_affine")
    err = capsys.readouterr().err
    assert rc == 2
    assert "data.on_device=true" in err and "flip_affine" in err
    assert "--set data.on_device=false" in err


def test_missing_test_root_fails_before_the_training_caches(recipe, tmp_path, capsys):
    rc = _train(recipe, tmp_path / "run", "data.test=[manifest:/no/such/test_set]")
    err = capsys.readouterr().err
    assert rc == 2
    assert "data.test" in err and "--set data.test=manifest:" in err


def test_unknown_data_set_name_lists_the_valid_ones(recipe, tmp_path, capsys):
    rc = _train(recipe, tmp_path / "run", f"data.val=[rafbd:{tmp_path}]")
    err = capsys.readouterr().err
    assert rc == 2 and "'data.val'" in err and "rafbd" in err and "rafdb" in err


def test_a_valid_config_reaches_the_work_the_guards_stand_for(recipe, tmp_path):
    """The guards bite: a good config goes on to build the image cache (and so would fail)."""
    with pytest.raises(AssertionError, match=r"an image cache was built|a model was made"):
        _train(recipe, tmp_path / "run", "train.epochs=1")


def test_unknown_landmark_detector_fails_before_any_cache(recipe, tmp_path, capsys):
    root = tmp_path / "data"
    rc = _train(recipe, tmp_path / "run", f'data.train=["manifest:{root},'
                         'detect_landmarks=yunett"]')
    err = capsys.readouterr().err
    assert rc == 2
    assert "'data.train'" in err and "detect_landmarks=yunett" in err
    assert "'yunett' is unknown; expected yunet" in err
