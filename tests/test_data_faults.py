"""Adapter x fault kind: `data check` and `data cache` agree on every malformed input.

Each case breaks one tiny replica in one way and runs the real CLI in-process, strict and with
`skip_bad`. For every case: no traceback; `check` fails exactly when `cache` (what `train` reads)
refuses; a failure names the file (and line or field) and what is wrong; with `skip_bad` the
bad entry is skipped and counted under the same reason by both commands. Files that are not
images are never an error, and always counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_replicas import (
    make_affectnet_csv,
    make_affectnet_npy,
    make_fedro,
    make_ferplus_folders,
    make_folder_tree,
    make_rafdb,
    write_image,
)
from fermixnet.cli import main

ERROR = "error in both modes"  # a fault that skip_bad does not skip


@dataclass
class Replica:
    """A built replica: its spec, the split read, one image of that split, the folder an adapter
    scans for images (None for list-based formats) and the list/CSV file lines are added to."""

    spec: str
    split: str
    image: Path
    folder: Path | None
    table: Path | None


def _rafdb(root: Path) -> Replica:
    make_rafdb(root, lists=False)
    basic = root / "basic"
    return Replica(f"rafdb:{root}", "train", basic / "Image/aligned/train_00001_aligned.jpg",
                   None, basic / "EmoLabel/list_patition_label.txt")  # fmt: skip


def _ran_list(root: Path) -> Replica:
    make_rafdb(root)
    return Replica(f"rafdb:{root}", "test", root / "basic/Image/aligned/test_0001_aligned.jpg",
                   None, root / "rafdb_occlusion_list.txt")  # fmt: skip


def _affectnet_csv(root: Path) -> Replica:
    make_affectnet_csv(root, codes_train=(0, 1, 2), codes_val=(0,))
    image = next((root / "Manually_Annotated_Images").rglob("*.jpg"))
    return Replica(f"affectnet:{root}", "train", image, None,
                   root / "Manually_Annotated_file_lists/training.csv")  # fmt: skip


def _affectnet_npy(root: Path) -> Replica:
    make_affectnet_npy(root, codes=(0, 1, 2))
    images = root / "train_set/images"
    return Replica(f"affectnet:{root}", "train", images / "0.jpg", images, None)


def _folder(root: Path) -> Replica:
    make_folder_tree(root, {"train": {"happy": 2, "sad": 2}})
    happy = root / "train/happy"
    return Replica(f"folder:{root}", "train", happy / "0.png", happy, None)


def _fedro(root: Path) -> Replica:
    make_fedro(root)
    anger = root / "FED-RO/anger"
    return Replica(f"fedro:{root}", "test", anger / "anger_0.jpg", anger, None)


def _manifest(root: Path) -> Replica:
    rows = ["path,label,split"]
    for i, label in enumerate(("happy", "sad", "anger")):
        write_image(root / "img" / f"{i}.png", i)
        rows.append(f"img/{i}.png,{label},train")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return Replica(f"manifest:{root}", "train", root / "img/0.png", None, root / "manifest.csv")


def _ferplus_folders(root: Path) -> Replica:
    make_ferplus_folders(root)
    folder = root / "FER2013Train"
    return Replica(f"ferplus:{root}", "train", folder / "fer0000000.png", None,
                   folder / "label.csv")  # fmt: skip


def _append(line: str) -> Callable[[Replica], str]:
    def add(r: Replica) -> str:
        with open(r.table, "a") as handle:
            handle.write(line + "\n")
        return r.table.name

    add.__name__ = f"line {line!r}"
    return add


def _zero_byte(r: Replica) -> str:
    r.image.write_bytes(b"")
    return r.image.name


def _text_as_image(r: Replica) -> str:
    r.image.write_text("not an image, only its name says so\n")
    return r.image.name


def _hidden(r: Replica) -> str:
    (r.folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return ".DS_Store"


def _gif(r: Replica) -> str:
    Image.new("P", (4, 4)).save(r.folder / "animated.gif")
    return "animated.gif"


def _npy(name: str, content: str | None) -> Callable[[Replica], str]:
    def write(r: Replica) -> str:
        path = r.image.parent.parent / "annotations" / name
        if content is None:
            path.write_bytes(b"")
        else:
            np.save(path, np.array(content))
        return name

    write.__name__ = f"{name} {'empty' if content is None else repr(content)}"
    return write


def _class_folder(name: str) -> Callable[[Replica], str]:
    def add(r: Replica) -> str:
        write_image(r.folder.parent / name / "x.png", 5)
        return name

    add.__name__ = f"class folder {name!r}"
    return add


def _pose_label_mismatch(r: Replica) -> str:
    (r.table.parent / "val_raf_db_label.txt").write_text("2 7\n0\n5\n")
    return "val_raf_db_label.txt"


def _image_without_annotation(r: Replica) -> str:
    write_image(r.folder / "99.jpg", 99)
    return "99_exp.npy"


def _box_outside(r: Replica) -> str:
    rel = r.image.relative_to(r.image.parents[1]).as_posix()
    return _append(f'{rel},100,100,10,8,"",1,0,0')(r)


# (adapter, fault: break it -> a name the message must hold, strict message, skip_bad reason);
# strict message None: not an error (the file is ignored and counted in both modes); reason
# ERROR: skip_bad does not skip it (the folder or list is wrong, not one sample).
CASES = [
    (_rafdb, _zero_byte, "empty file", "undecodable image"),
    (_rafdb, _text_as_image, "not an image", "undecodable image"),
    (_rafdb, _append("train_00009.jpg"), ":15: expected", "malformed line"),
    (_rafdb, _append("train_00009.jpg happy"), "is not an integer", "malformed line"),
    (_rafdb, _append("train_00009.jpg 9"), "out of range 1..7", "malformed line"),
    (_rafdb, _append("train_00042.jpg 3"), "not found", "missing file"),
    (_ran_list, _append(",,"), ":6: no image name", "malformed list line"),
    (_ran_list, _append("test_0004_aligned happy 4"), "expected an integer", "malformed list line"),
    (_ran_list, _pose_label_mismatch, "differs from", ERROR),
    (_ferplus_folders, _zero_byte, "empty file", "undecodable image"),
    (_ferplus_folders, _text_as_image, "not an image", "undecodable image"),
    (_affectnet_csv, _zero_byte, "empty file", "undecodable image"),
    (_affectnet_csv, _text_as_image, "not an image", "undecodable image"),
    (_affectnet_csv, _append("1/short.jpg,1"), ":5: wrong number of fields", "malformed line"),
    (_affectnet_csv, _append('1/x.jpg,2,3,10,8,"",happy,0,0'), "not an integer", "malformed line"),
    (_affectnet_csv, _append('1/x.jpg,2,3,10,8,"",12,0,0'), "out of range 0..10", "malformed line"),
    (_affectnet_csv, _append('1/x.jpg,a,3,10,8,"",1,0,0'), "face_x 'a' is not a number",
     "malformed line"),
    (_affectnet_csv, _append('1/x.jpg,2,3,0,8,"",1,0,0'), "must be positive", "malformed line"),
    (_affectnet_csv, _append('9/gone.jpg,2,3,10,8,"",1,0,0'), "not found", "missing file"),
    (_affectnet_csv, _box_outside, "lies outside the 20x16 image", "undecodable image"),
    (_affectnet_npy, _zero_byte, "empty file", "undecodable image"),
    (_affectnet_npy, _text_as_image, "not an image", "undecodable image"),
    (_affectnet_npy, _hidden, None, "hidden file ignored"),
    (_affectnet_npy, _gif, None, "non-image file ignored (.gif)"),
    (_affectnet_npy, _npy("1_exp.npy", None), "empty file", "bad annotation"),
    (_affectnet_npy, _npy("1_exp.npy", "happy"), "not an integer", "bad annotation"),
    (_affectnet_npy, _npy("7_exp.npy", "1"), None, "annotation without image"),
    (_affectnet_npy, _image_without_annotation, "not found", "bad annotation"),
    (_folder, _zero_byte, "empty file", "undecodable image"),
    (_folder, _text_as_image, "not an image", "undecodable image"),
    (_folder, _hidden, None, "hidden file ignored"),
    (_folder, _gif, None, "non-image file ignored (.gif)"),
    (_folder, _class_folder("smiling"), "unknown expression label 'smiling'", ERROR),
    (_fedro, _zero_byte, "empty file", "undecodable image"),
    (_fedro, _class_folder("contempt"), "FED-RO has 7 classes", ERROR),
    (_fedro, _hidden, None, "hidden file ignored"),
    (_fedro, _gif, None, "non-image file ignored (.gif)"),
    (_manifest, _zero_byte, "empty file", "undecodable image"),
    (_manifest, _text_as_image, "not an image", "undecodable image"),
    (_manifest, _append("img/1.png"), ":5: wrong number of fields", "malformed line"),
    (_manifest, _append("img/1.png,9,train"), "out of range 0..7", "malformed line"),
    (_manifest, _append("img/1.png,happy,later"), "split 'later'", "malformed line"),
    (_manifest, _append("img/gone.png,happy,train"), "not found", "missing file"),
]


def _run(capsys, *argv: str) -> tuple[int, str]:
    status = main(list(argv))  # anything but a clean status (a traceback) fails the test
    out, err = capsys.readouterr()
    return status, out + err


def _check(capsys, r: Replica, skip: bool) -> tuple[int, dict, str]:
    flags = ["--skip-bad"] if skip else []
    status, text = _run(capsys, "data", "check", "--data", r.spec, "--split", r.split, *flags)
    again, out = _run(capsys, "data", "check", "--data", r.spec, "--split", r.split, "--json",
                      *flags)  # fmt: skip
    assert again == status
    return status, json.loads(out)["splits"][0], text


def _cache(capsys, r: Replica, skip: bool) -> tuple[int, str]:
    flags = ["--skip-bad"] if skip else []
    return _run(capsys, "data", "cache", "--data", r.spec, "--split", r.split, "--size", "8",
                *flags)  # fmt: skip


def _case_id(case) -> str:
    build, fault, _, reason = case
    return f"{build.__name__[1:]}-{fault.__name__.strip('_')}-{reason}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_check_and_cache_agree_on_every_fault(case, tmp_path, capsys, monkeypatch):
    build, fault, message, reason = case
    monkeypatch.setenv("FERMIXNET_CACHE", str(tmp_path / "cache"))
    replica = build(tmp_path / "data")
    named = fault(replica)

    status, split, text = _check(capsys, replica, skip=False)
    cache_status, cache_text = _cache(capsys, replica, skip=False)
    if message is None:  # ignored and counted, strict or not
        assert status == 0 and cache_status == 0, text + cache_text
        assert split["skipped"][reason] == 1
        assert f"skipped: 1 {reason}" in cache_text
    else:
        assert status == 1, text  # check refuses what cache refuses ...
        assert cache_status == 2, cache_text  # ... a clean user error, not a traceback
        assert message in text and named in text, text  # names the file and what is wrong
        assert message in cache_text and named in cache_text, cache_text

    status, split, text = _check(capsys, replica, skip=True)
    cache_status, cache_text = _cache(capsys, replica, skip=True)
    if reason == ERROR:
        assert (status, cache_status) == (1, 2) and message in text and message in cache_text
        return
    assert status == 0 and cache_status == 0, text + cache_text
    assert split["skipped"][reason] == 1, split["skipped"]  # skipped AND counted
    assert f"skipped: 1 {reason}" in text and f"skipped: 1 {reason}" in cache_text


@pytest.mark.parametrize(
    "make",
    [
        lambda root: (root / "train").mkdir(parents=True),  # a root with only an empty train/
        lambda root: root.mkdir(),  # an empty folder
        lambda root: make_folder_tree(root, {"train": {"happy": 0}}),  # an empty class folder
        lambda root: root.write_text("a file, not a folder"),
    ],
    ids=["empty-train", "empty-root", "empty-class", "root-is-a-file"],
)
@pytest.mark.parametrize("adapter", ["folder", "fedro"])
def test_empty_folders_are_errors(make, adapter, tmp_path, capsys):
    make(tmp_path / "d")
    status, text = _run(capsys, "data", "check", "--data", f"{adapter}:{tmp_path / 'd'}")
    assert status == 1 and "ERROR" in text and str(tmp_path / "d") in text, text


def test_zero_images_is_an_error_for_list_formats(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.csv").write_text("path,label,split\n")
    status, text = _run(capsys, "data", "check", "--data", f"manifest:{tmp_path / 'm'}")
    assert status == 1 and "no images" in text, text
    make_rafdb(tmp_path / "r", lists=False)
    label_file = tmp_path / "r/basic/EmoLabel/list_patition_label.txt"
    label_file.write_text("".join(t for t in label_file.read_text().splitlines(True)
                                  if t.startswith("test")))  # fmt: skip
    status, text = _run(capsys, "data", "check", "--data", f"rafdb:{tmp_path / 'r'}")
    assert status == 1 and "train: ERROR no images in split 'train'" in text, text


def test_all_images_skipped_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FERMIXNET_CACHE", str(tmp_path / "cache"))
    make_folder_tree(tmp_path / "d", {"train": {"happy": 1}})
    (tmp_path / "d/train/happy/0.png").write_bytes(b"")
    spec = f"folder:{tmp_path / 'd'}"
    status, text = _run(capsys, "data", "check", "--data", spec, "--skip-bad")
    assert status == 1 and "no readable images" in text, text
    status, text = _run(capsys, "data", "cache", "--data", spec, "--skip-bad", "--size", "8")
    assert status == 2 and "none of the 1 images could be decoded" in text, text


def test_an_os_error_is_a_clean_user_error(tmp_path, capsys):
    make_folder_tree(tmp_path / "d", {"train": {"happy": 1}})
    (tmp_path / "file").write_text("x")
    status, text = _run(capsys, "data", "cache", "--data", f"folder:{tmp_path / 'd'}",
                        "--cache-dir", str(tmp_path / "file" / "cache"))  # fmt: skip
    assert status == 2 and "fermixnet data: error:" in text and "file" in text, text
