"""`fermixnet train` rejects a bad config in well under a second, naming the key and the `--set`
that fixes it, before any image cache is built (issue 12: checks before work)."""

from __future__ import annotations

import csv
import importlib
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fermixnet.data.cache
from fermixnet.cli import build_parser, main
from fermixnet.data import list_datasets
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

    monkeypatch.setattr(fermixnet.data.cache, "build_cache", no_cache)
    path = tmp_path / "tiny.yaml"
    path.write_text(f"""
model: {{name: resnet18, num_classes: 7, input_size: 16}}
data: {{train: ["manifest:{root}"], val_fraction: 0.0, workers: 0,
        cache_dir: "{tmp_path / 'cache'}"}}
train: {{epochs: 1, batch_size: 4, device: cpu}}
""")
    return path


def _train(recipe: Path, out: Path, *overrides: str) -> tuple[int, float]:
    """Exit status and seconds of `fermixnet train`, module imports excluded (they are the same
    for every command and take seconds on a busy CPU)."""
    for module in ("fermixnet.engine.trainer", "fermixnet.models.pretrained",
                   "fermixnet.inference.faces"):
        importlib.import_module(module)
    list_datasets()  # imports the adapter modules
    build_parser()
    t0 = time.perf_counter()
    rc = main(["train", "--config", str(recipe), "--out", str(out), "--set", *overrides])
    return rc, time.perf_counter() - t0


def test_mistyped_pretrained_path_fails_before_any_cache(recipe, tmp_path, capsys):
    rc, seconds = _train(recipe, tmp_path / "run", "model.pretrained=/no/such/resnet18_ms.pth")
    err = capsys.readouterr().err
    assert rc == 2 and seconds < 1.0
    assert "'model.pretrained'" in err and "/no/such/resnet18_ms.pth" in err
    assert "--set model.pretrained=" in err
    assert not (tmp_path / "run").exists()


def test_on_device_with_an_unsupported_preset_fails_before_any_cache(recipe, tmp_path, capsys):
    rc, seconds = _train(recipe, tmp_path / "run", "data.on_device=true",
                         "aug.preset=flip_affine")
    err = capsys.readouterr().err
    assert rc == 2 and seconds < 1.0
    assert "data.on_device=true" in err and "flip_affine" in err
    assert "--set data.on_device=false" in err


def test_missing_test_root_fails_before_the_training_caches(recipe, tmp_path, capsys):
    rc, seconds = _train(recipe, tmp_path / "run", "data.test=[manifest:/no/such/test_set]")
    err = capsys.readouterr().err
    assert rc == 2 and seconds < 1.0
    assert "data.test" in err and "--set data.test=manifest:" in err


def test_unknown_data_set_name_lists_the_valid_ones(recipe, tmp_path, capsys):
    rc, _ = _train(recipe, tmp_path / "run", f"data.val=[rafbd:{tmp_path}]")
    err = capsys.readouterr().err
    assert rc == 2 and "'data.val'" in err and "rafbd" in err and "rafdb" in err


def test_unknown_landmark_detector_fails_before_any_cache(recipe, tmp_path, capsys):
    root = tmp_path / "data"
    rc, seconds = _train(recipe, tmp_path / "run", f'data.train=["manifest:{root},'
                         'detect_landmarks=yunett"]')
    err = capsys.readouterr().err
    assert rc == 2 and seconds < 1.0
    assert "'data.train'" in err and "detect_landmarks=yunett" in err
    assert "'yunett' is unknown; expected yunet" in err
