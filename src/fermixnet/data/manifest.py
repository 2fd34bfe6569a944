"""CSV manifests: `path,label[,split][,meta...]`, the format the synthetic generator writes.

`path` is relative to the manifest's folder (absolute paths are kept); `label` is a class name
(canonical or alias) or a canonical index; `split` is train, val or test; every other column is
per-sample meta (e.g. `occlusion`, `occluder`), which `FERDataset.subsets` turns into evaluation
subsets.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from fermixnet import labels
from fermixnet.data.base import DatasetReport, FERDataset, Sample
from fermixnet.data.folder import class_index, infer_num_classes, parse_class_map
from fermixnet.data.registry import check_split, register_dataset

MANIFEST_NAME = "manifest.csv"
_SPLIT_VALUES = {
    "train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"
}  # fmt: skip


def _manifest_path(root: Path, file: str) -> Path:
    path = root if root.is_file() else root / file
    if not path.is_file():
        given = f" (option file={file})" if file != MANIFEST_NAME else ""
        raise FileNotFoundError(f"manifest: {path}{given} not found; expected a CSV with header "
                                "path,label[,split][,...]")  # fmt: skip
    return path


def read_manifest(
    path: Path, class_map: Mapping[str, str], report: DatasetReport, *, skip_bad: bool
) -> list[Sample]:
    """Every row of a manifest as a Sample (meta holds `split` and the extra columns).

    Raises:
        ValueError: a missing `path`/`label` column, or a bad row (file and line in the message).
        FileNotFoundError: an image named in the manifest is missing (without `skip_bad`).
    """
    base = path.parent
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("path", "label") if c not in columns]
        if missing:
            raise ValueError(
                f"{path}:1: header {','.join(columns) or '(empty)'} lacks column(s) "
                f"{', '.join(missing)}; expected path,label[,split][,meta...]"
            )
        reader.fieldnames = columns
        samples = []
        try:
            for row in reader:
                sample = _row_sample(row, path, reader.line_num, base, class_map, report, skip_bad)
                if sample is not None:
                    samples.append(sample)
        except csv.Error as err:
            raise ValueError(f"{path}:{reader.line_num}: not a readable CSV line ({err})") from None
    return samples


def _row_sample(
    row: dict,
    path: Path,
    line: int,
    base: Path,
    class_map: Mapping[str, str],
    report: DatasetReport,
    skip_bad: bool,
) -> Sample | None:
    where = f"{path}:{line}"
    try:
        if None in row or any(v is None for v in row.values()):
            raise ValueError(f"{where}: wrong number of fields; expected one per header column")
        rel, label_text = row["path"].strip(), row["label"].strip()
        if not rel or not label_text:
            raise ValueError(f"{where}: empty path or label")
        label = class_index(label_text, class_map, where)
        split = (row.get("split") or "").strip().lower()
        if "split" in row and split not in _SPLIT_VALUES:
            raise ValueError(f"{where}: split {split!r} is not one of train, val, test")
    except ValueError:
        if not skip_bad:
            raise
        report.skip("malformed line")
        return None
    image = Path(rel) if Path(rel).is_absolute() else base / rel
    if not image.is_file():
        if not skip_bad:
            raise FileNotFoundError(f"{where}: image {image} not found")
        report.skip("missing file")
        return None
    meta = {k: (v or "").strip() for k, v in row.items() if k not in ("path", "label")}
    if "split" in meta:
        meta["split"] = _SPLIT_VALUES[split]
    return Sample(str(image), label, meta)


@register_dataset("manifest")
def manifest_dataset(
    root: Path,
    split: str = "train",
    *,
    file: str = MANIFEST_NAME,
    num_classes: Literal[7, 8, "auto"] | None = None,
    class_map: str | Mapping[str, str] | None = None,
    skip_bad: bool = False,
) -> FERDataset:
    """A CSV manifest (`<root>/manifest.csv`, or `root` itself when it is a CSV file).

    Args:
        root: folder holding the manifest, or the manifest file.
        split: train, val, test, or all (all rows); a manifest without a `split` column only
            allows `all`.
        file: manifest file name inside `root`.
        num_classes: 7 or 8; by default 8 when any row is contempt, else 7.
        class_map: label -> class (`src:dst;...` or a preset, see `folder.parse_class_map`).
        skip_bad: skip malformed rows, missing and undecodable images (counted in the report).
    """
    split = check_split("manifest", split, ("train", "val", "test", "all"))
    path = _manifest_path(root, file)
    report = DatasetReport(sources=[str(path)])
    rows = read_manifest(
        path, parse_class_map(class_map), report, skip_bad=skip_bad
    )
    has_split = any("split" in s.meta for s in rows)
    if split != "all" and rows and not has_split:
        raise ValueError(f"{path}: no split column, so only split=all can be read")
    n = infer_num_classes({s.label for s in rows}, num_classes, str(path))
    chosen = [s for s in rows if split == "all" or s.meta.get("split") == split]
    return FERDataset(
        chosen, labels.class_names(n), name="manifest", root=path.parent, split=split,
        report=report,
    )
