"""FERPlus (Sec. 4.1.2): FER2013's 48x48 images relabelled by ten annotators, 8 classes.

Two layouts are read (`layout=auto` picks the first present):

- `csv`: `fer2013.csv` (`emotion,pixels,Usage`, the Kaggle file) and `fer2013new.csv`
  (`Usage,Image name,neutral,...,contempt,unknown,NF`) in `root`, row i of one describing row i
  of the other. Rows whose `Image name` is empty were removed by FERPlus and are skipped (counted).
- `folders`: what FERPlus's `generate_training_data.py` writes: `FER2013Train/`, `FER2013Valid/`,
  `FER2013Test/` holding `fer0000000.png` files, with each folder's `label.csv` from the FERPlus
  repository (`fer0000000.png,"(0, 0, 48, 48)",4,0,0,1,3,2,0,0,0,0`, no header); without a
  `label.csv`, `fer2013new.csv` in `root` is used.

Splits: Training -> train, PublicTest -> val, PrivateTest -> test. Labels from the votes, see
`ferplus_votes` for the rules (`vote=max|majority`, `tie=drop|first|random`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fermixnet import labels
from fermixnet.data.base import DatasetReport, FERDataset, Sample
from fermixnet.data.fer2013_csv import (
    EXPECTED,
    PixelArrayDataset,
    csv_lines,
    parse_pixels,
    read_fer2013,
    skip_reason,
    stack_pixels,
    usage_split,
)
from fermixnet.data.ferplus_votes import vote_label
from fermixnet.data.registry import check_split, register_dataset
from fermixnet.data.subsets import attach_lists
from fermixnet.framing import FER2013_FRAMING

FOLDERS = {"train": ("FER2013Train", "Train"), "val": ("FER2013Valid", "Valid"),
           "test": ("FER2013Test", "Test")}  # fmt: skip
LISTS = {
    "occlusion": ("jianfei_occlusion_list.txt",),
    "pose30": ("pose_30_ferplus_list.txt",),
    "pose45": ("pose_45_ferplus_list.txt",),
}


def _votes(fields: list[str], where: str) -> list[int]:
    if len(fields) != 10 or not all(f.strip().isdigit() for f in fields):
        raise ValueError(f"{where}: expected 10 integer vote counts, got {fields}")
    return [int(f) for f in fields]


class _Labeller:
    """Votes -> canonical label, counting every dropped image in the report."""

    def __init__(self, vote: str, tie: str, seed: int, num_classes: int, report: DatasetReport):
        self.vote, self.tie, self.seed, self.report = vote, tie, seed, report
        self.num_classes = num_classes
        vote_label([1] * 10, vote, tie)  # validates vote and tie before reading anything

    def __call__(self, votes: list[int], key: str) -> int | None:
        column, reason = vote_label(votes, self.vote, self.tie, self.seed, key)
        if column is None:
            self.report.skip(f"votes: {reason}")
            return None
        label = labels.FERPLUS_TO_CANONICAL[column]
        if label >= self.num_classes:
            self.report.skip("contempt (7-class protocol)")
            return None
        return label


def _read_csv_layout(
    root: Path, split: str, label_of: _Labeller, report: DatasetReport, skip_bad: bool
) -> tuple[list[Sample], np.ndarray]:
    fer_path, new_path = root / "fer2013.csv", root / "fer2013new.csv"
    samples, pixels = [], []
    new = csv_lines(new_path)
    head_new = next(new).checked() if new_path.stat().st_size else []
    if len(head_new) != 12 or head_new[0].strip() != "Usage":
        raise ValueError(f"{new_path}:1: expected header Usage,Image name,<10 vote columns>")
    for fer_line, new_line in _paired(read_fer2013(fer_path), new, root):
        line, where = fer_line.number, f"{new_path}:{new_line.number}"
        try:
            row_fer, row_new = fer_line.checked(), new_line.checked()
            if len(row_new) != 12:
                raise ValueError(f"{where}: expected 12 fields, got {len(row_new)}")
            if row_new[0].strip() != row_fer[2].strip():
                raise ValueError(f"{where}: Usage {row_new[0]!r} differs from "
                                 f"{fer_path}:{line} ({row_fer[2]!r})")  # fmt: skip
            if usage_split(row_new[0], where) != split:
                continue
            name = row_new[1].strip()
            if not name:
                report.skip("removed by FERPlus (no image name)")
                continue
            label = label_of(_votes(row_new[2:], where), name)
            if label is None:
                continue
            pixels.append(parse_pixels(row_fer[1], f"{fer_path}:{line}"))
        except ValueError as err:
            if not skip_bad:
                raise
            report.skip(skip_reason(err))
            continue
        meta = {"split": split, "image_name": name, "votes": ",".join(row_new[2:])}
        samples.append(Sample(f"{fer_path}#{name}", label, meta))
    return samples, stack_pixels(pixels)


def _paired(fer: Iterator, new: Iterator, root: Path) -> Iterator[tuple[Any, Any]]:
    """Row i of fer2013.csv with row i of fer2013new.csv; never truncate silently."""
    for row_fer, row_new in itertools.zip_longest(fer, new):
        if row_fer is None or row_new is None:
            shorter, longer = ("fer2013.csv", row_new) if row_fer is None else (
                "fer2013new.csv", row_fer)  # fmt: skip
            raise ValueError(f"{root / shorter} ends at line {longer.number - 1} but its companion "
                             "file goes on: fer2013.csv and fer2013new.csv must have equal rows")
        yield row_fer, row_new


def _label_rows(
    root: Path, folder: Path, split: str, report: DatasetReport, skip_bad: bool
) -> tuple[Path, list[tuple[int, list[str]]]]:
    """(file, [(line, [name, 10 votes])]) from the folder's label.csv or from fer2013new.csv."""
    path = folder / "label.csv"
    if path.is_file():  # name, "(x, y, w, h)", 10 votes
        rows = [(r.number, r.checked()) for r in csv_lines(path)]
        return path, [(n, [r[0], *r[2:]]) if len(r) == 12 else (n, r) for n, r in rows]
    path = root / "fer2013new.csv"
    out = []
    for row in itertools.islice(csv_lines(path), 1, None):
        try:
            fields = row.checked(1)
            if usage_split(fields[0], f"{path}:{row.number}") == split:
                out.append((row.number, fields[1:]))
        except ValueError as err:
            if not skip_bad:
                raise
            report.skip(skip_reason(err))
    return path, out


def _read_folder_layout(
    root: Path, folder: Path, split: str, label_of: _Labeller, report: DatasetReport,
    skip_bad: bool,
) -> list[Sample]:  # fmt: skip
    path, rows = _label_rows(root, folder, split, report, skip_bad)
    report.sources.append(str(path))
    samples = []
    for line, row in rows:
        where = f"{path}:{line}"
        try:
            if len(row) != 11:
                raise ValueError(f"{where}: expected an image name and 10 vote counts")
            if not row[0].strip():
                report.skip("removed by FERPlus (no image name)")
                continue
            label = label_of(_votes(row[1:], where), row[0].strip())
        except ValueError:
            if not skip_bad:
                raise
            report.skip("malformed line")
            continue
        if label is None:
            continue
        image = folder / row[0].strip()
        if not image.is_file():
            if not skip_bad:
                raise FileNotFoundError(f"{where}: image {image} not found")
            report.skip("missing file")
            continue
        samples.append(Sample(str(image), label, {"split": split, "votes": ",".join(row[1:])}))
    return samples


def _find_folder(root: Path, split: str) -> Path | None:
    return next((root / n for n in FOLDERS[split] if (root / n).is_dir()), None)


@register_dataset("ferplus", framing=FER2013_FRAMING)
def ferplus_dataset(
    root: Path,
    split: str = "train",
    *,
    layout: Literal["auto", "csv", "folders"] = "auto",
    vote: Literal["max", "majority"] = "max",
    tie: Literal["drop", "first", "random"] = "drop",
    seed: int = 0,
    num_classes: Literal[7, 8] = 8,
    occlusion_list: str | None = None,
    pose30_list: str | None = None,
    pose45_list: str | None = None,
    skip_bad: bool = False,
) -> FERDataset:
    """FERPlus, 8 classes (or 7 with contempt dropped and counted).

    Options arrive typed: `registry.create_dataset` coerces a spec's strings to these hints.

    Args:
        root: folder with fer2013.csv + fer2013new.csv, or with FER2013Train/Valid/Test.
        split: train (Training), val (PublicTest) or test (PrivateTest).
        layout: auto, csv or folders.
        vote: `max` (paper, default) or `majority` (FERPlus paper's mode); see `ferplus_votes`.
        tie: `drop` (default), `first` or `random`, for ties under `vote=max`.
        seed: seed of random tie-breaking.
        num_classes: 8 (default) or 7.
        occlusion_list: RAN's Occlusion-FERPlus list (default `jianfei_occlusion_list.txt`).
        pose30_list: Pose-FERPlus >30 list (default `pose_30_ferplus_list.txt`).
        pose45_list: Pose-FERPlus >45 list (default `pose_45_ferplus_list.txt`).
        skip_bad: skip malformed lines and missing images (counted) instead of failing.
    """
    split = check_split("ferplus", split, ("train", "val", "test"))
    n, skip = num_classes, skip_bad
    report = DatasetReport(expected=EXPECTED[split])
    label_of = _Labeller(vote, tie, seed, n, report)
    folder = _find_folder(root, split)
    has_csv = (root / "fer2013.csv").is_file() and (root / "fer2013new.csv").is_file()
    common = {"classes": labels.class_names(n), "name": "ferplus", "root": root, "split": split,
              "report": report, "expected_size": (48, 48)}  # fmt: skip
    explicit = {"occlusion": occlusion_list, "pose30": pose30_list, "pose45": pose45_list}
    if layout == "folders" or (layout == "auto" and folder is not None):
        if folder is None:
            raise FileNotFoundError(f"ferplus: no {' or '.join(FOLDERS[split])} folder in {root}")
        samples = _read_folder_layout(root, folder, split, label_of, report, skip)
        samples = attach_lists(samples, [root], LISTS, explicit, report,
                               label_map=labels.FERPLUS_TO_CANONICAL, skip_bad=skip)  # fmt: skip
        return FERDataset(samples, **common)
    if not has_csv:
        raise FileNotFoundError(
            f"ferplus: {root} holds neither fer2013.csv + fer2013new.csv nor FER2013Train/"
            "FER2013Valid/FER2013Test folders (see docs/data.md)"
        )
    samples, pixels = _read_csv_layout(root, split, label_of, report, skip)
    samples = attach_lists(samples, [root], LISTS, explicit, report,
                           label_map=labels.FERPLUS_TO_CANONICAL, skip_bad=skip)  # fmt: skip
    csv_files = [str(root / "fer2013.csv"), str(root / "fer2013new.csv")]
    return PixelArrayDataset(samples, pixels, csv_files, **common)
