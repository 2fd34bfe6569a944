"""AffectNet (Sec. 4.1.3): AffectNet-7 and AffectNet-8, the validation set as test set.

Two releases are read (`layout=auto` picks the one present):

- `csv` (the original release): `Manually_Annotated_file_lists/training.csv` and `validation.csv`
  (or those files in `root`), header `subDirectory_filePath,face_x,face_y,face_width,face_height,
  facial_landmarks,expression,valence,arousal`; images under `Manually_Annotated_Images/`
  (or `Manually_Annotated/Manually_Annotated_Images/`). Each image is cropped to its face box;
  `facial_landmarks` (68 points, `x;y;...` in the full image) become the five landmarks of
  `fermixnet.data.landmarks` in the crop's pixels (a malformed cell: no landmarks, counted).
- `npy` (the newer release): `train_set/images/<id>.jpg` with `train_set/annotations/<id>_exp.npy`,
  and `val_set/...` likewise; images are already face crops. `<id>_lnd.npy` (68 points, 136
  numbers in the crop's pixels), when present, gives the five landmarks.

Expression codes 0..7 are the canonical classes (neutral, happy, sad, surprise, fear, disgust,
anger, contempt); 8 none, 9 uncertain and 10 no-face are dropped (counted); AffectNet-7 also drops
7 contempt. `balance=downsample` keeps a class-balanced subset (Sec. 4.2), `max_per_class` caps it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from fermixnet import labels
from fermixnet.data.base import DatasetReport, FERDataset, Sample
from fermixnet.data.folder import count_ignored
from fermixnet.data.imageio import (
    ImageInfo,
    ImageReadError,
    check_not_empty,
    decode_error,
    pil_to_rgb_array,
)
from fermixnet.data.landmarks import from_68, parse_points
from fermixnet.data.registry import check_split, register_dataset
from fermixnet.data.sampling import class_balanced_downsample
from fermixnet.data.subsets import attach_lists

CSV_FILES = {"train": "training.csv", "val": "validation.csv", "test": "validation.csv"}
NPY_SETS = {"train": "train_set", "val": "val_set", "test": "val_set"}
EXPECTED = {(7, "train"): 283901, (7, "val"): 3500, (8, "train"): 287651, (8, "val"): 4000}
DROPPED_CODES = {8: "code 8 (none)", 9: "code 9 (uncertain)", 10: "code 10 (no face)"}
REQUIRED = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression")
LISTS = {
    "occlusion": ("occlusion_affectnet_list.txt",),
    "pose30": ("pose_30_affectnet_list.txt",),
    "pose45": ("pose_45_affectnet_list.txt",),
}


class AffectNetCSVDataset(FERDataset):
    """AffectNet's original release: each sample is its face box cropped from the full image."""

    def __init__(
        self, samples: list[Sample], boxes: np.ndarray, lines: np.ndarray | None = None,
        table: str = "", marks: np.ndarray | None = None, **kw: Any,
    ) -> None:  # fmt: skip
        if marks is not None:  # full-image pixels -> pixels of the crop at the clipped box
            marks = marks - np.maximum(boxes[:, None, :2], 0)
        super().__init__(samples, points=marks, **kw)
        self.boxes = boxes  # (N, 4) x, y, width, height
        self.lines = lines  # (N,) line of each sample in `table`, named in errors
        self.table = table

    def load(self, index: int) -> np.ndarray:
        path = self.samples[index].path
        try:
            check_not_empty(Path(path), None)
            with Image.open(path) as image:
                image.load()
                box = self.crop_box(index, image.width, image.height)
                return pil_to_rgb_array(image.crop(box))
        except FileNotFoundError:
            raise FileNotFoundError(f"image file not found: {path}") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise decode_error(path, err) from err

    def crop_box(self, index: int, width: int, height: int) -> tuple[int, int, int, int]:
        """The face box of sample `index` clipped to a `width` x `height` image (PIL order).

        A few released boxes reach past the border, so the box is clipped.

        Raises:
            ImageReadError: the box lies entirely outside the image.
        """
        x, y, w, h = (int(v) for v in self.boxes[index])
        box = (max(x, 0), max(y, 0), min(x + w, width), min(y + h, height))
        if box[2] <= box[0] or box[3] <= box[1]:
            where = f"{self.table}:{self.lines[index]}: " if self.lines is not None else ""
            raise ImageReadError(
                f"{where}face box x={x} y={y} width={w} height={h} lies outside the "
                f"{width}x{height} image {self.samples[index].path}"
            )
        return box

    def validate(self, index: int, info: ImageInfo) -> None:
        self.crop_box(index, info.width, info.height)

    def sample_id(self, index: int) -> str:
        return f"{self.samples[index].path}#{','.join(str(int(v)) for v in self.boxes[index])}"


class AffectNetNpyDataset(FERDataset):
    """AffectNet's newer release: landmarks from `annotations/<id>_lnd.npy`, read when cached."""

    def landmark_file(self, index: int) -> Path:
        """The sample's `<id>_lnd.npy` (which may not exist)."""
        path = Path(self.samples[index].path)
        return path.parent.parent / "annotations" / f"{path.stem}_lnd.npy"

    def landmarks(self, index: int, height: int, width: int) -> np.ndarray | None:
        path = self.landmark_file(index)
        if not path.is_file():
            return None
        try:
            return from_68(np.load(path, allow_pickle=False).astype(np.float64).reshape(68, 2))
        except (OSError, ValueError, TypeError):
            return np.full((5, 2), np.nan)  # counted and named by the cache and `data check`

    def source_files(self, indices=None) -> list[str]:
        chosen = range(len(self)) if indices is None else indices
        marks = {str(f) for f in map(self.landmark_file, chosen) if f.is_file()}
        return sorted(set(super().source_files(indices)) | marks)


def _label(
    code_text: str | None, where: str, num_classes: int, report: DatasetReport
) -> int | None:
    code_text = (code_text or "").strip()
    if not code_text.lstrip("-").isdigit():
        raise ValueError(f"{where}: expression {code_text!r} is not an integer code 0-10")
    code = int(code_text)
    if code in DROPPED_CODES:
        report.skip(DROPPED_CODES[code])
        return None
    if code not in labels.AFFECTNET_TO_CANONICAL:
        raise ValueError(f"{where}: expression code {code} is out of range 0..10")
    if labels.AFFECTNET_TO_CANONICAL[code] >= num_classes:
        report.skip("contempt (AffectNet-7)")
        return None
    return labels.AFFECTNET_TO_CANONICAL[code]


def _box(row: dict, where: str) -> list[int]:
    values = []
    for key in REQUIRED[1:5]:
        text = (row.get(key) or "").strip()
        try:
            values.append(int(float(text)))
        except ValueError:
            raise ValueError(f"{where}: {key} {text!r} is not a number") from None
    if values[2] <= 0 or values[3] <= 0:
        raise ValueError(f"{where}: face box width and height must be positive, got {values[2:]}")
    return values


def _first(paths: list[Path], what: str) -> Path:
    for path in paths:
        if path.exists():
            return path
    looked = ", ".join(map(str, paths))
    raise FileNotFoundError(f"affectnet: {what} not found (looked for {looked})")


def _landmarks_cell(text: str | None) -> np.ndarray:
    """Five landmarks (full-image pixels) from a `facial_landmarks` cell; NaN when absent or
    malformed (the cache counts and names them)."""
    try:
        return from_68(parse_points(text or "", 68))
    except ValueError:
        return np.full((5, 2), np.nan)


def _read_csv(
    root: Path, split: str, n: int, report: DatasetReport, skip_bad: bool
) -> tuple[list[Sample], np.ndarray, np.ndarray, str, np.ndarray]:
    """Samples, face boxes (N, 4), CSV line numbers (N,), the CSV file of one split and the
    landmarks (N, 5, 2) in full-image pixels."""
    name = CSV_FILES[split]
    table = _first([root / "Manually_Annotated_file_lists" / name, root / name], name)
    images = _first([root / "Manually_Annotated_Images",
                     root / "Manually_Annotated" / "Manually_Annotated_Images"],
                    "Manually_Annotated_Images")  # fmt: skip
    report.sources.append(str(table))
    samples, boxes, lines, marks = [], [], [], []
    meta = {"split": split}  # shared by all samples (never mutated): saves memory on big sets
    with open(table, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        try:
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{table}:1: header lacks {', '.join(missing)}")
            for row in reader:
                found = _csv_row(row, f"{table}:{reader.line_num}", images, n, report, skip_bad)
                if found is not None:
                    samples.append(Sample(str(found[0]), found[1], meta))
                    boxes.append(found[2])
                    lines.append(reader.line_num)
                    marks.append(_landmarks_cell(row.get("facial_landmarks")))
        except csv.Error as err:
            where = f"{table}:{reader.line_num}"
            raise ValueError(f"{where}: not a readable CSV line ({err})") from None
    boxes_array = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    points = np.asarray(marks, dtype=np.float64).reshape(-1, 5, 2)
    return samples, boxes_array, np.asarray(lines, dtype=np.int64), str(table), points


def _csv_row(
    row: dict, where: str, images: Path, n: int, report: DatasetReport, skip_bad: bool
) -> tuple[Path, int, list[int]] | None:
    """(image, label, box) of one CSV row; None when the row is dropped (counted)."""
    try:
        if None in row or any(v is None for v in row.values()):
            raise ValueError(f"{where}: wrong number of fields; expected one per header column")
        rel = row["subDirectory_filePath"].strip()
        if not rel:
            raise ValueError(f"{where}: empty subDirectory_filePath")
        label = _label(row["expression"], where, n, report)
        if label is None:
            return None
        box = _box(row, where)
    except ValueError as err:
        if not skip_bad:
            message = str(err) if where in str(err) else f"{where}: {err}"
            raise ValueError(message) from None
        report.skip("malformed line")
        return None
    path = images / rel
    if not path.is_file():
        if not skip_bad:
            raise FileNotFoundError(f"{where}: image {path} not found")
        report.skip("missing file")
        return None
    return path, label, box


def _read_code(exp: Path, n: int, report: DatasetReport) -> int | None:
    """Canonical label from an `<id>_exp.npy` file (None: a dropped code, counted)."""
    if exp.stat().st_size == 0:
        raise ValueError(f"{exp}: empty file (0 bytes); expected a .npy holding the code")
    try:
        code = np.load(exp, allow_pickle=False)  # a 0-d array holding the code as text
    except (ValueError, EOFError, OSError) as err:
        raise ValueError(f"{exp}: not a readable .npy file ({err})") from None
    return _label(str(code.reshape(-1)[0]) if code.size else "", str(exp), n, report)


def _read_npy(
    root: Path, split: str, n: int, report: DatasetReport, skip_bad: bool
) -> list[Sample]:
    folder = root / NPY_SETS[split]
    images, annotations = folder / "images", folder / "annotations"
    if not images.is_dir() or not annotations.is_dir():
        raise FileNotFoundError(f"affectnet: {images} or {annotations} not found")
    samples = []
    meta = {"split": split}  # shared by all samples (never mutated)
    files = sorted(images.iterdir())
    for path in files:
        if not count_ignored(path, report):
            continue
        exp = annotations / f"{path.stem}_exp.npy"
        try:
            if not exp.is_file():
                raise FileNotFoundError(f"affectnet: annotation {exp} for {path.name} not found")
            label = _read_code(exp, n, report)
        except (ValueError, OSError):
            if not skip_bad:
                raise
            report.skip("bad annotation")
            continue
        if label is not None:
            samples.append(Sample(str(path), label, meta))
    stems = {p.stem for p in files}
    orphans = [a for a in annotations.glob("*_exp.npy") if a.name[: -len("_exp.npy")] not in stems]
    if orphans:
        report.skip("annotation without image", len(orphans))
        report.notes.append(f"{len(orphans)} annotations without an image, e.g. {orphans[0]}")
    return samples


@register_dataset("affectnet", framing="box")
def affectnet_dataset(
    root: Path,
    split: str = "train",
    *,
    num_classes: Literal[7, 8] = 7,
    layout: Literal["auto", "csv", "npy"] = "auto",
    balance: Literal["none", "downsample"] = "none",
    max_per_class: int | None = None,
    seed: int = 0,
    occlusion_list: str | None = None,
    pose30_list: str | None = None,
    pose45_list: str | None = None,
    skip_bad: bool = False,
) -> FERDataset:
    """AffectNet-7 (default) or AffectNet-8.

    Options arrive typed: `registry.create_dataset` coerces a spec's strings to these hints.

    Args:
        root: the release folder.
        split: train, or val/test (both the official validation set).
        num_classes: 7 (drops contempt) or 8.
        layout: auto, csv (original release, face-box crops) or npy (newer release).
        balance: `none` or `downsample` (class-balanced subset, seeded).
        max_per_class: cap per class for `downsample` (default: smallest class count).
        seed: seed of the down-sampling.
        occlusion_list: RAN's Occlusion-AffectNet list (default `occlusion_affectnet_list.txt`).
        pose30_list: Pose-AffectNet >30 list (default `pose_30_affectnet_list.txt`).
        pose45_list: Pose-AffectNet >45 list (default `pose_45_affectnet_list.txt`).
        skip_bad: skip malformed lines (annotations and subset lists), missing and undecodable
            images (counted) instead of failing.
    """
    split = check_split("affectnet", split, ("train", "val", "test"))
    n, skip = num_classes, skip_bad
    labels.class_names(n)
    report = DatasetReport(expected=EXPECTED.get((n, "train" if split == "train" else "val")))
    if layout == "auto":
        layout = "npy" if (root / NPY_SETS[split]).is_dir() else "csv"
    boxes = lines = marks = None
    if layout == "csv":
        samples, boxes, lines, table, marks = _read_csv(root, split, n, report, skip)
    else:
        samples = _read_npy(root, split, n, report, skip)
    explicit = {"occlusion": occlusion_list, "pose30": pose30_list, "pose45": pose45_list}
    samples = attach_lists(samples, [root], LISTS, explicit, report,
                           label_map=labels.AFFECTNET_TO_CANONICAL, skip_bad=skip)  # fmt: skip
    if balance == "downsample":
        keep = class_balanced_downsample(samples, seed, max_per_class)
        report.skip("down-sampled (balance)", len(samples) - len(keep))
        samples = [samples[i] for i in keep]
        boxes = boxes[keep] if boxes is not None else None
        lines = lines[keep] if lines is not None else None
        marks = marks[keep] if marks is not None else None
    common = {"classes": labels.class_names(n), "name": "affectnet", "root": root,
              "split": split, "report": report}  # fmt: skip
    if boxes is not None:
        return AffectNetCSVDataset(samples, boxes, lines, table, marks, **common)
    return AffectNetNpyDataset(samples, expected_size=(224, 224), **common)
