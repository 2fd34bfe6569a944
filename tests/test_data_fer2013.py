"""FER2013 (`fer2013` adapter) and the shared `fer2013.csv` reader, on generated files with the
release's header and code table, and its quirks: a stray quote, a bad pixel count, an unknown
Usage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fermixnet.cli import main
from fermixnet.data import create_dataset

# The release's code table: emotion 0..6.
FER2013_CODES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CANONICAL_OF_CODE = ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# (emotion, Usage) per row: every code in train, some in val and test.
ROWS = [(code, "Training") for code in range(7)] + [(3, "PublicTest"), (6, "PublicTest"),
                                                    (0, "PrivateTest"), (5, "PrivateTest")]
VOTES = "0,0,0,0,0,0,0,0,0,0"


def gray(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def pixel_text(seed: int) -> str:
    return " ".join(map(str, gray(seed).ravel()))


def write_fer2013(root: Path, rows=ROWS, *, quoted: bool = False,
                  with_ferplus: bool = False) -> Path:  # fmt: skip
    """`fer2013.csv` (and with `with_ferplus`, a `fer2013new.csv` whose votes agree)."""
    root.mkdir(parents=True, exist_ok=True)
    quote = '"' if quoted else ""
    lines = ["emotion,pixels,Usage"]
    lines += [f"{e},{quote}{pixel_text(i)}{quote},{u}" for i, (e, u) in enumerate(rows)]
    (root / "fer2013.csv").write_text("\n".join(lines) + "\n")
    if with_ferplus:
        new = ["Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,"
               "unknown,NF"]
        new += [f"{u},fer{i:07d}.png,10,{VOTES[2:]}" for i, (_, u) in enumerate(rows)]
        (root / "fer2013new.csv").write_text("\n".join(new) + "\n")
    return root / "fer2013.csv"


def replace_line(path: Path, line: int, old: str, new: str) -> None:
    lines = path.read_text().splitlines()
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("quoted", [False, True])
def test_csv_codes_and_usage_map_to_canonical_splits(tmp_path, quoted):
    write_fer2013(tmp_path, quoted=quoted)
    train = create_dataset("fer2013", tmp_path, "train")
    assert [train.classes[i] for i in train.labels()] == list(CANONICAL_OF_CODE)
    assert train.report.expected == 28709 and train.expected_size == (48, 48)
    image = train.load(4)
    assert image.shape == (48, 48, 3)
    np.testing.assert_array_equal(image[..., 1], gray(4))
    val = create_dataset("fer2013", tmp_path, "val")
    assert [val.classes[i] for i in val.labels()] == ["happy", "neutral"]
    test = create_dataset("fer2013", tmp_path / "fer2013.csv", "test")  # the file itself as root
    assert [test.classes[i] for i in test.labels()] == ["anger", "surprise"]
    np.testing.assert_array_equal(test.load(1)[..., 0], gray(10))


@pytest.mark.parametrize("adapter", ["fer2013", "ferplus"])
def test_bad_pixel_count_is_named_or_counted(tmp_path, adapter):
    path = write_fer2013(tmp_path, with_ferplus=True)
    text = pixel_text(2)
    replace_line(path, 4, text, text.rsplit(" ", 1)[0])  # row 2: 2303 values
    with pytest.raises(ValueError, match=r"fer2013\.csv:4: expected 2304 .* got 2303"):
        create_dataset(adapter, tmp_path, "train")
    train = create_dataset(adapter, tmp_path, "train", skip_bad="1")
    assert len(train) == 6 and train.report.skipped == {"bad pixel count": 1}


@pytest.mark.parametrize("adapter", ["fer2013", "ferplus"])
def test_unknown_usage_is_named_or_counted(tmp_path, adapter):
    path = write_fer2013(tmp_path, with_ferplus=True)
    replace_line(path, 10, "PublicTest", "PublicTest2")
    replace_line(tmp_path / "fer2013new.csv", 10, "PublicTest", "PublicTest2")
    with pytest.raises(ValueError, match=r"csv:10: Usage 'PublicTest2' is not one of"):
        create_dataset(adapter, tmp_path, "val")
    val = create_dataset(adapter, tmp_path, "val", skip_bad="1")
    assert len(val) == 1 and val.report.skipped == {"unknown Usage": 1}


@pytest.mark.parametrize("adapter", ["fer2013", "ferplus"])
def test_stray_quote_names_its_own_line(tmp_path, adapter):
    rows = ROWS * 3  # enough text after the quote to pass csv's 128 KiB field limit
    path = write_fer2013(tmp_path, rows, with_ferplus=True)
    text = pixel_text(2)
    replace_line(path, 4, text, '"' + text)
    with pytest.raises(ValueError, match=r"fer2013\.csv:4: unbalanced double quote"):
        create_dataset(adapter, tmp_path, "train")
    train = create_dataset(adapter, tmp_path, "train", skip_bad="1")
    assert len(train) == 20 and sum(train.report.skipped.values()) == 1


def test_bad_header_and_emotion_code(tmp_path):
    path = write_fer2013(tmp_path)
    replace_line(path, 3, "1,", "7,")
    with pytest.raises(ValueError, match=r"fer2013\.csv:3: emotion '7' is not an integer code"):
        create_dataset("fer2013", tmp_path, "train")
    replace_line(path, 1, "emotion", "label")
    with pytest.raises(ValueError, match=r"fer2013\.csv:1: expected header emotion,pixels,Usage"):
        create_dataset("fer2013", tmp_path, "test")


def write_folders(root: Path) -> None:
    for split, codes in (("train", range(7)), ("test", (3, 6))):
        for code in codes:
            folder = root / split / FER2013_CODES[code]
            folder.mkdir(parents=True)
            Image.fromarray(gray(code)).save(folder / f"{split}_{code}.png")


def test_image_folder_copy(tmp_path):
    write_folders(tmp_path)
    train = create_dataset("fer2013", tmp_path, "train")
    assert sorted(train.classes[i] for i in train.labels()) == sorted(CANONICAL_OF_CODE)
    assert train.report.expected == 28709
    test = create_dataset("fer2013", tmp_path, "test")
    assert test.report.expected == 7178 and len(test) == 2
    plain = create_dataset("folder", tmp_path, "train", class_map="fer2013")
    assert plain.labels().tolist() == train.labels().tolist()
    with pytest.raises(FileNotFoundError, match="no val split folder"):
        create_dataset("fer2013", tmp_path, "val")
    with pytest.raises(FileNotFoundError, match=r"no fer2013\.csv"):
        create_dataset("fer2013", tmp_path, "train", layout="csv")


def test_data_check_counts_splits_and_leaks(tmp_path, capsys):
    path = write_fer2013(tmp_path)
    replace_line(path, 12, pixel_text(10), pixel_text(3))  # a test row copies train row 3
    assert main(["data", "check", "--data", f"fer2013:{tmp_path}", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    counts = {s["split"]: (s["images"], s["expected"]) for s in report["splits"]}
    assert counts == {"train": (7, 28709), "val": (2, 3589), "test": (2, 3589)}
    assert report["duplicates"]["cross_split"] == {"train/test": 1}
    assert report["duplicates"]["conflicting_groups"] == 1  # happy in train, surprise in test
    test = create_dataset("fer2013", tmp_path, "test", exclude_leaked="1")
    assert [s.meta["row"] for s in test.samples] == ["9"]  # row 10 (line 12) dropped
