"""The bad-sample policy travels with the data: cache keys, run folders and `data occlude`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from data_replicas import make_folder_tree, write_corrupt, write_image
from fermixnet.cli import main
from fermixnet.config import load_config
from fermixnet.data import create_dataset
from fermixnet.data.cache import build_cache
from fermixnet.engine import fit
from fermixnet.synth import occlude as occluders


def _manifest_with_a_bad_image(root: Path) -> Path:
    rows = ["path,label,split"]
    for i in range(14):
        split = "test" if i % 2 else "train"
        write_image(root / "img" / f"{i}.png", i, (16, 16))
        rows.append(f"img/{i}.png,{('happy', 'sad')[i // 2 % 2]},{split}")
    write_corrupt(root / "img" / "bad.png")
    rows.append("img/bad.png,happy,train")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_a_strict_run_never_reuses_a_cache_that_skipped_images(tmp_path, capsys, monkeypatch):
    root = _manifest_with_a_bad_image(tmp_path / "d")
    monkeypatch.setenv("FERMIXNET_CACHE", str(tmp_path / "cache"))
    spec = f"manifest:{root}"
    assert main(["data", "cache", "--data", spec, "--size", "8", "--skip-bad"]) == 0
    assert "7 images 8x8, 1 skipped" in capsys.readouterr().out
    assert main(["data", "cache", "--data", spec, "--size", "8"]) == 2  # rebuilt, so refused
    assert "not an image" in capsys.readouterr().err
    strict = create_dataset("manifest", root, "train")
    with pytest.raises(ValueError, match=r"bad\.png: not an image"):
        build_cache(strict, 8, tmp_path / "cache")
    lenient = create_dataset("manifest", root, "train", skip_bad=1)
    cached = build_cache(lenient, 8, tmp_path / "cache")  # the data set's policy by default
    assert len(cached) == 7 and cached.policy == "skip"
    assert cached.skip_record()["skipped"] == {"undecodable image": 1}


def test_run_folder_records_what_was_skipped(tmp_path):
    root = _manifest_with_a_bad_image(tmp_path / "d")
    (root / "img" / ".DS_Store").write_bytes(b"x")  # not read by a manifest: not counted
    spec = f"manifest:{root},skip_bad=1"
    cfg = load_config(overrides=[
        "model.name=resnet18", "model.num_classes=7", "model.input_size=16",
        f"data.train=['{spec}']", f"data.test=['{spec}']", "data.workers=0",
        f"data.cache_dir={tmp_path / 'cache'}", "data.val_fraction=0",
        "train.epochs=1", "train.batch_size=8", "train.device=cpu",
    ])  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(cfg, tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    record = json.loads((tmp_path / "run" / "data.json").read_text())["caches"]
    by_split = {r["split"]: r for r in record}
    assert by_split["train"]["skipped"] == {"undecodable image": 1}
    assert by_split["train"]["images"] == 7 and by_split["train"]["on_error"] == "skip"
    assert "bad.png: not an image" in by_split["train"]["undecodable"][0]
    assert by_split["test"]["skipped"] == {} and by_split["test"]["images"] == 7


def test_occlude_refuses_an_output_inside_the_source(tmp_path, capsys):
    make_folder_tree(tmp_path / "src", {"test": {"happy": 1, "sad": 1}})
    spec = f"folder:{tmp_path / 'src'}"
    before = sorted(p.name for p in (tmp_path / "src").rglob("*"))
    for out in (tmp_path / "src" / "occluded", tmp_path / "src", tmp_path):
        status = main(["data", "occlude", "--data", spec, "--out", str(out)])
        assert status == 2 and "inside the source data folder" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "src").rglob("*")) == before
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main(["data", "occlude", "--data", spec, "--out", str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_a_failed_occlude_leaves_nothing(tmp_path, monkeypatch):
    make_folder_tree(tmp_path / "src", {"test": {"happy": 2, "sad": 2}})
    real, calls = occluders._occlude_item, []

    def fail_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(occluders, "_occlude_item", fail_on_the_third)
    with pytest.raises(OSError, match="disk full"):
        occluders.occlude_dataset(f"folder:{tmp_path / 'src'}", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no output, no staging left
    monkeypatch.setattr(occluders, "_occlude_item", real)
    manifest = occluders.occlude_dataset(f"folder:{tmp_path / 'src'}", tmp_path / "out")
    assert manifest == tmp_path / "out" / "manifest.csv" and manifest.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]
