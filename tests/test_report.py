"""Reports from run folders written by hand (no training): tables side by side, CSV, plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from fermixnet.config import MixConfig
from fermixnet.engine.evaluate import compute_eval_result
from fermixnet.report import write_report
from fermixnet.report.plots import mix_sample_columns

CLASSES = ["neutral", "happy", "sad"]


def fake_run(path: Path, name: str, correct: int, epochs: int = 2, best_correct: int | None = None
             ) -> Path:
    """A run folder whose test accuracy is `correct` / 8 with the last weights and
    `best_correct` / 8 (default `correct` - 2) with the best-by-validation ones; the first image
    is always wrong with the best weights, so their `occlusion=upper` subset differs too."""
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    best_correct = correct - 2 if best_correct is None else best_correct
    for which, n in (("last", correct), ("best", best_correct)):
        logits = torch.nn.functional.one_hot(labels, 3).float()
        wrong = torch.arange(8) >= n if which == "last" else torch.arange(8) >= n + 1
        if which == "best":
            wrong[0] = True
        logits[wrong] = torch.nn.functional.one_hot((labels[wrong] + 1) % 3, 3).float()
        res = compute_eval_result("occ", {"fused": logits, "high": logits}, labels, CLASSES,
                                  {"occluded": [0, 1, 2, 3], "occlusion=upper": [0, 1]})
        res.save(path / "eval" / f"occ-{which}.json")
    history = [{"epoch": e + 1, "train_loss": 2.0 - e, "train_acc": 0.3 + 0.1 * e,
                "val_accuracy": 0.4 + 0.1 * e} for e in range(epochs)]
    (path / "metrics.json").write_text(json.dumps({
        "name": name, "status": "complete", "epochs": epochs, "epochs_completed": epochs,
        "best_epoch": epochs, "best_val": history[-1]["val_accuracy"], "history": history}))
    (path / "config.yaml").write_text("mix: {method: fermix, p_mix: 0.8}\nmodel: {name: x}\n")
    return path


def test_report_puts_runs_side_by_side(tmp_path):
    a = fake_run(tmp_path / "a", "baseline", correct=4)
    b = fake_run(tmp_path / "b", "fermixnet", correct=6)
    md_path = write_report([a, b], tmp_path / "out")
    md = md_path.read_text()
    assert "| metric | baseline | fermixnet |" in md
    # last and best differ in every fixture, so swapping or merging them shows
    assert "| accuracy (last epoch, fused) | 50.00 | 75.00 |" in md
    assert "| accuracy (best by val, fused) | 25.00 | 50.00 |" in md
    assert "| occlusion=upper (best by val) | 50.00 | 50.00 |" in md
    assert "| occlusion=upper (last epoch) | 100.00 | 100.00 |" in md
    assert "## Training curves" in md and "confusion_fermixnet_occ.png" in md
    rows = list(csv.reader((tmp_path / "out" / "report.csv").open()))
    assert ["fermixnet", "occ", "accuracy (best by val, fused)", "0.5"] in rows
    assert ["fermixnet", "occ", "accuracy (last epoch, fused)", "0.75"] in rows
    assert ["baseline", "train", "epoch 2 val_accuracy", "0.5"] in rows
    for png in ("curves.png", "confusion_baseline_occ.png", "subsets_occ.png"):
        assert (tmp_path / "out" / "plots" / png).stat().st_size > 1000


def test_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="run folder"):
        write_report([tmp_path], tmp_path / "out")
    with pytest.raises(ValueError, match="names"):
        write_report([fake_run(tmp_path / "a", "a", 1)], tmp_path / "out", names=["x", "y"])


def test_fermix_sample_columns_show_the_six_regions():
    imgs = torch.stack([torch.full((3, 8, 8), 0, dtype=torch.uint8),
                        torch.full((3, 8, 8), 255, dtype=torch.uint8)])
    cols = dict(mix_sample_columns(imgs, MixConfig()))
    assert list(cols) == ["original", "upper", "lower", "left", "right", "upper_left",
                          "upper_right"]
    up = cols["upper"][0, 0]  # image 0 (black) takes its upper half from image 1 (white)
    assert up[:4].eq(1).all() and up[4:].eq(0).all()
    corner = cols["upper_right"][0, 0]
    assert corner[:4, 4:].eq(1).all() and corner[:4, :4].eq(0).all() and corner[4:].eq(0).all()
