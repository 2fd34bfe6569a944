"""Generic formats: class folders `<root>/<split>/<class>/*` and CSV manifests.

Both map class names to the canonical order through `labels.canonical_index` (aliases such as
FED-RO's `neural` included) and an optional `class_map`: `src:dst;src:dst`, or a preset name
(`affectnet`, `rafdb`, `rafdb0`, `fer2013`, `ferplus`) for folders named by a data set's codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from fermixnet import labels
from fermixnet.data.base import DatasetReport, FERDataset, Sample
from fermixnet.data.imageio import IMAGE_EXTENSIONS, is_image_file
from fermixnet.data.registry import check_split, register_dataset

_SPLIT_DIRS: Mapping[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}
_PRESETS: Mapping[str, Mapping[int, int]] = {
    "affectnet": labels.AFFECTNET_TO_CANONICAL,
    "rafdb": labels.RAFDB_TO_CANONICAL,
    "rafdb0": labels.RAFDB0_TO_CANONICAL,
    "fer2013": labels.FER2013_TO_CANONICAL,
    "ferplus": labels.FERPLUS_TO_CANONICAL,
}


def parse_class_map(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """Turn `class_map` into {source name (lower case): canonical name}.

    Accepts a mapping, a preset name (codes of a data set, e.g. `rafdb` maps "1" to surprise), or
    `src:dst;src:dst` (`;` because `,` separates options in a data spec).

    Raises:
        ValueError: a pair without `:` or a target that is not a class name.
    """
    if spec is None or spec == "":
        return {}
    if isinstance(spec, Mapping):
        pairs = list(spec.items())
    elif spec.strip().lower() in _PRESETS:
        table = _PRESETS[spec.strip().lower()]
        return {str(code): labels.CANONICAL[idx] for code, idx in table.items()}
    else:
        pairs = []
        for item in spec.split(";"):
            if not item.strip():
                continue
            src, sep, dst = item.partition(":")
            if not sep:
                raise ValueError(f"class_map entry {item!r} must be source:target (or a preset: "
                                 f"{', '.join(_PRESETS)})")
            pairs.append((src, dst))
    out: dict[str, str] = {}
    for src, dst in pairs:
        try:
            out[str(src).strip().lower()] = labels.CANONICAL[labels.canonical_index(str(dst))]
        except ValueError as err:
            raise ValueError(f"class_map entry {src}:{dst}: {err}") from None
    return out


def class_index(name: str, class_map: Mapping[str, str], where: str) -> int:
    """Canonical index of a folder name or manifest label.

    Raises:
        ValueError: naming `where` (file and line, or folder) and the accepted names.
    """
    key = name.strip().lower()
    if key in class_map:
        return labels.canonical_index(class_map[key])
    if key.isdigit():
        index = int(key)
        if 0 <= index < len(labels.CANONICAL):
            return index
        raise ValueError(f"{where}: label {name!r} is out of range 0..{len(labels.CANONICAL) - 1}")
    try:
        return labels.canonical_index(key)
    except ValueError as err:
        raise ValueError(f"{where}: {err}; or map it with class_map=NAME:CLASS") from None


def infer_num_classes(label_set: set[int], num_classes: int | str | None, where: str) -> int:
    """7 unless contempt occurs (then 8), or the user's choice checked against the labels.

    Raises:
        ValueError: a user choice of 7 with contempt labels present, or not 7/8.
    """
    if num_classes in (None, "", "auto"):
        return 8 if labels.CANONICAL.index("contempt") in label_set else 7
    labels.class_names(int(num_classes))
    return int(num_classes)


def _find_split_dir(root: Path, split: str) -> Path:
    children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    for name in _SPLIT_DIRS[split]:
        if name in children:
            return children[name]
    raise FileNotFoundError(
        f"folder: no {split!r} split folder in {root} (looked for {', '.join(_SPLIT_DIRS[split])}; "
        f"found {', '.join(sorted(children)) or 'no folders'})"
    )


def require_folder(name: str, root: Path) -> None:
    """Raise a clear error when `root` is a file where a folder of images is expected.

    Raises:
        ValueError: naming the adapter and the path.
    """
    if not root.is_dir():
        raise ValueError(f"{name}: data root {root} is a file; expected a folder (docs/data.md)")


def count_ignored(path: Path, report: DatasetReport) -> bool:
    """Whether `path` is an image file to read; anything else in an image folder is counted.

    Hidden files (`.DS_Store`, `._x.jpg`, ...) count as `hidden file ignored`, other files
    (`.gif`, `.txt`, ...) as `non-image file ignored (.ext)`; folders are not counted.
    """
    if not path.is_file():
        return False
    if path.name.startswith("."):
        report.skip("hidden file ignored")
        return False
    if not is_image_file(path):
        report.skip(f"non-image file ignored ({path.suffix.lower() or 'no extension'})")
        return False
    return True


def scan_class_folders(
    folder: Path,
    class_map: Mapping[str, str],
    report: DatasetReport,
    *,
    skip_bad: bool,
    split: str,
) -> list[Sample]:
    """Samples from `folder/<class>/*.<image ext>`, sorted by path; other files are counted.

    Raises:
        ValueError: no class folders, an unknown class folder, or an empty class folder without
            `skip_bad`.
    """
    samples: list[Sample] = []
    entries = sorted(folder.iterdir())
    class_dirs = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
    if not class_dirs:
        raise ValueError(
            f"{folder} holds no class folders; expected {folder}/<class>/<image> "
            "(see docs/data.md)"
        )
    for path in entries:
        count_ignored(path, report)  # files beside the class folders are never read
    for class_dir in class_dirs:
        label = class_index(class_dir.name, class_map, f"class folder {class_dir}")
        files = [p for p in sorted(class_dir.rglob("*")) if count_ignored(p, report)]
        if not files:
            if not skip_bad:
                raise ValueError(
                    f"class folder {class_dir} holds no images "
                    f"({'/'.join(IMAGE_EXTENSIONS)}); remove it or pass skip_bad=1"
                )
            report.skip("empty class folder")
            report.notes.append(f"empty class folder skipped: {class_dir}")
        meta = {"split": split}
        samples.extend(Sample(str(p), label, meta) for p in files)
    return samples


@register_dataset("folder")
def folder_dataset(
    root: Path,
    split: str = "train",
    *,
    num_classes: Literal[7, 8, "auto"] | None = None,
    class_map: str | Mapping[str, str] | None = None,
    skip_bad: bool = False,
) -> FERDataset:
    """Image folders `<root>/<split>/<class>/*` (split folders train, val/valid, test).

    With `split=all` and class folders directly under `root`, those are read.

    Args:
        root: the data folder.
        split: train, val, test or all.
        num_classes: 7 or 8; by default 8 when a contempt folder exists in any split, else 7.
        class_map: folder name -> class (`src:dst;...` or a preset, see `parse_class_map`).
        skip_bad: skip empty class folders and undecodable images (counted) instead of failing.
    """
    split = check_split("folder", split, ("train", "val", "test", "all"))
    require_folder("folder", root)
    cmap = parse_class_map(class_map)
    report = DatasetReport()
    present = {s: d for s in _SPLIT_DIRS if (d := _split_dir_or_none(root, s)) is not None}
    if split == "all":
        folders = list(present.items()) or [("all", root)]
    else:
        folders = [(split, _find_split_dir(root, split))]
    samples = [
        s
        for name, folder in folders
        for s in scan_class_folders(
            folder, cmap, report, skip_bad=skip_bad, split=name
        )
    ]
    # Classes from every split's folders, so train and test agree on 7 vs 8.
    every = {
        class_index(c.name, cmap, f"class folder {c}")
        for d in (present.values() or [root])
        for c in d.iterdir()
        if c.is_dir() and c.name[0] != "."
    }
    n = infer_num_classes(every, num_classes, str(root))
    return FERDataset(
        samples, labels.class_names(n), name="folder", root=root, split=split, report=report
    )


def _split_dir_or_none(root: Path, split: str) -> Path | None:
    try:
        return _find_split_dir(root, split)
    except FileNotFoundError:
        return None
