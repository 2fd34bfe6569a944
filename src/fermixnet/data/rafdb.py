"""RAF-DB basic (Sec. 4.1.1): 12,271 train and 3,068 test images, 7 classes.

Layout (the `basic` folder of the release; `root` may be that folder or its parent):

    basic/EmoLabel/list_patition_label.txt   lines `train_00001.jpg 5`, labels 1..7 =
                                             surprise, fear, disgust, happy, sad, anger, neutral
    basic/Image/aligned/train_00001_aligned.jpg   100x100 aligned faces (default)
    basic/Image/original/train_00001.jpg          the original photos (`images=original`)
    basic/Annotation/manual/train_00001_manual.txt   five manual landmarks (optional): `x y`
                                             lines in the original photo's pixels, in the order
                                             image-left eye, image-right eye, nose tip, mouth
                                             corners image-left and image-right

The list names the original file; the aligned file adds `_aligned` before the extension. Names that
already carry `_aligned` (some redistributions) are accepted too. Occlusion-RAF-DB, Pose-RAF-DB
and the paper's occlusion-type split attach to the test split as meta (see `subsets`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from fermixnet import labels
from fermixnet.augment.landmarks import apply_similarity, fit_similarity
from fermixnet.data.base import DatasetReport, FERDataset, Sample
from fermixnet.data.landmarks import read_points_file
from fermixnet.data.registry import check_split, register_dataset
from fermixnet.data.subsets import attach_lists

LABEL_FILE = "EmoLabel/list_patition_label.txt"
EXPECTED = {"train": 12271, "test": 3068}
LISTS = {
    "occlusion": ("rafdb_occlusion_list.txt",),
    "pose30": ("val_raf_db_list.txt",),
    "pose45": ("val_raf_db_list_45.txt",),
    "occlusion_type": ("rafdb_occlusion_type_list.txt", "occlusion_type_list.txt"),
}
_NAME = re.compile(r"^(train|test)_(\d+)(_aligned)?\.(jpg|jpeg|png)$", re.IGNORECASE)


MANUAL_DIR = "Annotation/manual"


class RafdbDataset(FERDataset):
    """RAF-DB with its manual landmarks, read per sample when the cache is built.

    The manual points are in the original photo's pixels. For the aligned crops they are mapped
    by the least-squares similarity onto the framing's template (`fermixnet.framing`), which is
    how the crops were made if RAF-DB's (unpublished) template is ours: the points keep each
    face's own shape (a turned head, an open mouth), placed as the alignment placed the face.
    """

    def __init__(self, samples: list[Sample], manual: Path | None, aligned: bool, **kw) -> None:
        super().__init__(samples, **kw)
        self.manual, self.aligned = manual, aligned

    def manual_file(self, index: int) -> Path | None:
        """The sample's `<stem>_manual.txt`, or None without an annotation folder."""
        if self.manual is None:
            return None
        stem = Path(self.samples[index].path).stem.removesuffix("_aligned")
        return self.manual / f"{stem}_manual.txt"

    def landmarks(self, index: int, height: int, width: int) -> np.ndarray | None:
        path = self.manual_file(index)
        if path is None or not path.is_file():
            return None
        points = read_points_file(path)
        if not self.aligned or not np.isfinite(points).all():
            return points
        src = torch.from_numpy(points)[None]
        dst = torch.from_numpy(self.framing.points() * (width, height))[None]
        a, b = fit_similarity(src, dst)
        return apply_similarity(a, b, src)[0].numpy()

    def source_files(self, indices=None) -> list[str]:
        files = super().source_files(indices)
        chosen = range(len(self)) if indices is None else indices
        extra = {str(f) for f in map(self.manual_file, chosen) if f is not None and f.is_file()}
        return sorted(set(files) | extra)


def _basic_folder(root: Path, label_file: str | None) -> tuple[Path, Path]:
    if label_file:
        path = Path(label_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"rafdb: label_file {path} not found")
        return path.parent.parent, path
    for base in (root, root / "basic", root / "RAF-DB" / "basic"):
        if (base / LABEL_FILE).is_file():
            return base, base / LABEL_FILE
    raise FileNotFoundError(
        f"rafdb: {LABEL_FILE} not found under {root} (nor under {root}/basic); RAF-DB basic is "
        "obtained from its authors (see docs/data.md)"
    )


def _image_dir(base: Path, images: str) -> Path:
    if images not in ("aligned", "original"):
        raise ValueError(f"rafdb: images must be 'aligned' or 'original', got {images!r}")
    for folder in (base / "Image" / images, base / images):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"rafdb: image folder {base / 'Image' / images} not found")


def parse_label_line(text: str, where: str) -> tuple[str, str, int]:
    """(split, stem, canonical label) of a `train_00001.jpg 5` line.

    Raises:
        ValueError: malformed line or label outside 1..7, naming `where` (file:line).
    """
    tokens = text.split()
    match = _NAME.match(tokens[0]) if len(tokens) == 2 else None
    if match is None:
        raise ValueError(
            f"{where}: expected '<train|test>_NNNNN.jpg <label 1-7>', got {text.strip()!r}"
        )
    if not re.fullmatch(r"[+-]?\d+", tokens[1]):
        raise ValueError(f"{where}: label {tokens[1]!r} is not an integer; expected 1..7")
    if int(tokens[1]) not in labels.RAFDB_TO_CANONICAL:
        raise ValueError(f"{where}: label {tokens[1]!r} is out of range 1..7")
    stem = f"{match.group(1).lower()}_{match.group(2)}"
    return match.group(1).lower(), stem, labels.RAFDB_TO_CANONICAL[int(tokens[1])]


def read_rafdb(
    label_path: Path, image_dir: Path, split: str, images: str, report: DatasetReport,
    skip_bad: bool,
) -> list[Sample]:  # fmt: skip
    """Samples of one split from the label list (errors name file and line)."""
    samples = []
    meta = {"split": split}  # shared by all samples (never mutated): saves memory on big sets
    with open(label_path, encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{label_path}:{number}"
            try:
                line_split, stem, label = parse_label_line(text, where)
            except ValueError:
                if not skip_bad:
                    raise
                report.skip("malformed line")
                continue
            if line_split != split:
                continue
            name = f"{stem}_aligned.jpg" if images == "aligned" else f"{stem}.jpg"
            path = image_dir / name
            if not path.is_file():
                if not skip_bad:
                    raise FileNotFoundError(f"{where}: image {path} not found")
                report.skip("missing file")
                continue
            samples.append(Sample(str(path), label, meta))
    return samples


@register_dataset("rafdb", framing="template")
def rafdb_dataset(
    root: Path,
    split: str = "train",
    *,
    images: Literal["aligned", "original"] = "aligned",
    label_file: str | None = None,
    occlusion_list: str | None = None,
    pose30_list: str | None = None,
    pose45_list: str | None = None,
    occlusion_type_list: str | None = None,
    skip_bad: bool = False,
) -> FERDataset:
    """RAF-DB basic, 7 classes.

    Options arrive typed: `registry.create_dataset` coerces a spec's strings to these hints.

    Args:
        root: the `basic` folder or its parent.
        split: train or test.
        images: `aligned` (100x100, default) or `original`.
        label_file: another path for `list_patition_label.txt`.
        occlusion_list: RAN's Occlusion-RAF-DB list (default: `rafdb_occlusion_list.txt` if it
            is in root, root/lists or root/subsets).
        pose30_list: Pose-RAF-DB >30 list (default name `val_raf_db_list.txt`).
        pose45_list: Pose-RAF-DB >45 list (default name `val_raf_db_list_45.txt`).
        occlusion_type_list: the paper's UL/LR/C split, `<stem> <UL|LR|C>` a line (default name
            `rafdb_occlusion_type_list.txt`).
        skip_bad: skip malformed lines (label and subset lists), missing and undecodable images
            (counted) instead of failing.
    """
    split = check_split("rafdb", split, ("train", "test"))
    base, label_path = _basic_folder(root, label_file)
    report = DatasetReport(expected=EXPECTED[split], sources=[str(label_path)])
    image_dir = _image_dir(base, images)
    samples = read_rafdb(label_path, image_dir, split, images, report, skip_bad)
    if len(samples) != EXPECTED[split]:
        report.notes.append(f"{split}: {len(samples)} images, {EXPECTED[split]} expected")
    explicit = {
        "occlusion": occlusion_list, "pose30": pose30_list, "pose45": pose45_list,
        "occlusion_type": occlusion_type_list,
    }  # fmt: skip
    samples = attach_lists(
        samples, [root, base], LISTS, explicit, report, label_map=labels.RAFDB0_TO_CANONICAL,
        skip_bad=skip_bad,
    )
    manual = base / MANUAL_DIR
    return RafdbDataset(
        samples, manual if manual.is_dir() else None, images == "aligned",
        classes=labels.class_names(7), name="rafdb", root=root, split=split, report=report,
        expected_size=(100, 100) if images == "aligned" else None,
    )
