"""`fermixnet data check` / `data cache` / `data list` through the real CLI dispatcher."""

from __future__ import annotations

import json
import shutil

from data_replicas import (
    make_ferplus_csv,
    make_folder_tree,
    make_rafdb,
    write_corrupt,
    write_image,
    write_truncated_jpeg,
)
from fermixnet.cli import main


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_check_clean_rafdb_and_json(tmp_path, capsys):
    make_rafdb(tmp_path)
    status, out, _ = _run(capsys, "data", "check", "--data", f"rafdb:{tmp_path}", "--json")
    assert status == 0
    report = json.loads(out)
    train, test = report["splits"]
    assert report["ok"] and (train["split"], train["images"], train["expected"]) == (
        "train", 8, 12271
    )  # fmt: skip
    assert sum(train["per_class"].values()) == 8
    assert train["wrong_size"] == 8 and train["expected_size"] == [100, 100]  # replicas are 16px
    assert test["lists"]["rafdb_occlusion_list.txt"]["found"] == 3
    status, out, _ = _run(capsys, "data", "check", "--data", f"rafdb:{tmp_path}")
    assert status == 0 and "train: 8 images (expected 12271)" in out
    assert "warning: 8 images are not 100x100" in out


def test_check_reports_bad_and_odd_images(tmp_path, capsys):
    make_folder_tree(tmp_path, {"train": {"happy": 2}, "test": {"sad": 1}})
    happy = tmp_path / "train" / "happy"
    write_image(happy / "gray.png", 5, mode="L")
    write_image(happy / "cmyk.jpg", 6, mode="CMYK")
    write_image(happy / "rgba.png", 7, mode="RGBA")
    write_image(happy / "deep.png", 8, mode="I;16")
    write_truncated_jpeg(happy / "cut.jpg")
    write_corrupt(happy / "junk.png")
    shutil.copy(happy / "0.png", happy / "copy.png")
    status, out, _ = _run(capsys, "data", "check", "--data", f"folder:{tmp_path}", "--json")
    assert status == 1
    report = json.loads(out)
    train = next(s for s in report["splits"] if s["split"] == "train")
    assert not train["ok"] and len(train["unreadable"]) == 2
    assert any("cut.jpg" in e for e in train["unreadable"])
    assert train["kinds"] == {"rgb": 3, "grayscale": 1, "cmyk": 1, "rgba": 1, "16-bit": 1}
    assert report["duplicates"]["within_split"] == {"train": 1, "test": 0}
    assert [s["split"] for s in report["splits"]] == ["train", "test"]  # no val folder: skipped
    status, out, _ = _run(capsys, "data", "check", "--data", f"folder:{tmp_path}")
    assert status == 1 and "ERROR: 2 unreadable images" in out


def test_check_errors_and_skip_flag(tmp_path, capsys):
    make_rafdb(tmp_path, extra_lines="train_00009.jpg 9\n", lists=False)
    spec = f"rafdb:{tmp_path}"
    status, out, _ = _run(capsys, "data", "check", "--data", spec, "--split", "train")
    assert status == 1 and "list_patition_label.txt:15: label '9' is out of range" in out
    status, out, _ = _run(
        capsys, "data", "check", "--data", f"rafdb:{tmp_path}", "--split", "train", "--skip-bad"
    )
    assert status == 0 and "skipped: 1 malformed line" in out


def test_bad_spec_is_a_clean_user_error(capsys):
    status, _, err = _run(capsys, "data", "check", "--data", "/no/name")
    assert status == 2 and "must look like NAME:ROOT" in err


def test_cache_and_list_commands(tmp_path, capsys, monkeypatch):
    make_ferplus_csv(tmp_path / "fer")
    monkeypatch.setenv("FERMIXNET_CACHE", str(tmp_path / "cache"))
    status, out, _ = _run(
        capsys, "data", "cache", "--data", f"ferplus:{tmp_path / 'fer'}", "--size", "16"
    )
    assert status == 0 and "3 images 16x16" in out
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    status, out, _ = _run(capsys, "data", "list")
    assert status == 0 and {"rafdb", "ferplus", "affectnet", "fedro"} <= set(out.split())


def _snapshot(root):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_data_folder_is_never_modified(tmp_path, capsys, monkeypatch):
    make_rafdb(tmp_path / "raf")
    before = _snapshot(tmp_path / "raf")
    monkeypatch.setenv("FERMIXNET_CACHE", str(tmp_path / "cache"))
    spec = f"rafdb:{tmp_path / 'raf'}"
    assert _run(capsys, "data", "check", "--data", spec)[0] == 0
    assert _run(capsys, "data", "cache", "--data", spec, "--size", "8")[0] == 0
    assert _snapshot(tmp_path / "raf") == before
    monkeypatch.setenv("FERMIXNET_CACHE", str(tmp_path / "raf" / "cache"))
    status, _, err = _run(capsys, "data", "cache", "--data", spec)
    assert status == 2 and "inside the data folder" in err
    assert _snapshot(tmp_path / "raf") == before
