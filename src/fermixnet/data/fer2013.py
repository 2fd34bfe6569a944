"""FER2013 (Goodfellow et al., 2013): 35,887 48x48 grayscale faces, 7 classes.

Two layouts are read (`layout=auto` picks the CSV when present):

- `csv`: the original release `fer2013.csv` (`emotion,pixels,Usage`), read by `fer2013_csv` (the
  reader the FERPlus adapter shares). Usage Training -> train (28,709), PublicTest -> val (3,589),
  PrivateTest -> test (3,589).
- `folders`: the common image-folder copy, `train/<class>/*.png` and `test/<class>/*.png` with
  folders angry, disgust, fear, happy, neutral, sad, surprise: 28,709 train and 7,178 test images
  (PublicTest and PrivateTest together; no val split).

Emotion codes 0..6 = angry, disgust, fear, happy, sad, surprise, neutral, mapped to the canonical
order by `labels.FER2013_TO_CANONICAL`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fermixnet import labels
from fermixnet.data.base import DatasetReport, FERDataset, Sample
from fermixnet.data.fer2013_csv import (
    EXPECTED,
    PixelArrayDataset,
    parse_pixels,
    read_fer2013,
    skip_reason,
    stack_pixels,
    usage_split,
)
from fermixnet.data.folder import parse_class_map, scan_class_folders
from fermixnet.data.registry import check_split, register_dataset
from fermixnet.framing import FER2013_FRAMING

CSV_NAME = "fer2013.csv"
FOLDER_EXPECTED = {"train": 28709, "test": 7178}  # the image-folder copy: test = Public + Private


def _emotion(text: str, where: str) -> int:
    code = text.strip()
    if not code.isdigit() or int(code) not in labels.FER2013_TO_CANONICAL:
        raise ValueError(f"{where}: emotion {text!r} is not an integer code 0..6 "
                         "(angry, disgust, fear, happy, sad, surprise, neutral)")  # fmt: skip
    return labels.FER2013_TO_CANONICAL[int(code)]


def read_csv_split(
    path: Path, split: str, report: DatasetReport, skip_bad: bool
) -> tuple[list[Sample], list]:
    """Samples and pixels of one split of `fer2013.csv`; bad rows raise, or skip and count."""
    samples, pixels = [], []
    for row in read_fer2013(path):
        line, where = row.number, f"{path}:{row.number}"
        try:
            emotion, text, usage = row.checked()[:3]
            if usage_split(usage, where) != split:
                continue
            label = _emotion(emotion, where)
            pixels.append(parse_pixels(text, where))
        except ValueError as err:
            if not skip_bad:
                raise
            report.skip(skip_reason(err))
            continue
        row = line - 2  # 0-based data row, as in FERPlus's fer0000000.png names
        samples.append(Sample(f"{path}#{row}", label, {"split": split, "row": str(row)}))
    return samples, pixels


@register_dataset("fer2013", framing=FER2013_FRAMING)
def fer2013_dataset(
    root: Path, split: str = "train", *, layout: Literal["auto", "csv", "folders"] = "auto",
    skip_bad: bool = False,
) -> FERDataset:
    """FER2013, 7 classes, from `fer2013.csv` or from its image-folder copy.

    Args:
        root: folder with `fer2013.csv` (or the CSV itself), or with `train/` and `test/`.
        split: train, val (csv only) or test.
        layout: auto, csv or folders.
        skip_bad: skip malformed rows (unknown Usage, bad pixel count, ...) and count them.
    """
    skip = skip_bad
    csv_path = root if root.is_file() else root / CSV_NAME
    use_csv = layout == "csv" or (layout == "auto" and csv_path.is_file())
    if use_csv and not csv_path.is_file():
        raise FileNotFoundError(f"fer2013: no {CSV_NAME} in {root} (see docs/data.md)")
    split = check_split("fer2013", split, ("train", "val", "test"))
    if not use_csv and split == "val":
        raise FileNotFoundError(f"fer2013: the image-folder copy in {root} has no val split "
                                "folder (train/ and test/ only); use split=test")  # fmt: skip
    common = {"classes": labels.class_names(7), "name": "fer2013", "root": root, "split": split,
              "expected_size": (48, 48)}  # fmt: skip
    if use_csv:
        report = DatasetReport(expected=EXPECTED[split])
        samples, pixels = read_csv_split(csv_path, split, report, skip)
        return PixelArrayDataset(samples, stack_pixels(pixels), [str(csv_path)], report=report,
                                 **common)  # fmt: skip
    folder = root / split
    if not folder.is_dir():
        raise FileNotFoundError(f"fer2013: neither {CSV_NAME} nor a {split}/ split folder in "
                                f"{root} (see docs/data.md)")  # fmt: skip
    report = DatasetReport(expected=FOLDER_EXPECTED[split])
    samples = scan_class_folders(folder, parse_class_map(None), report, skip_bad=skip, split=split)
    return FERDataset(samples, report=report, **common)
