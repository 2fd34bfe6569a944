"""FED-RO (Sec. 4.1.4): 400 faces with real occlusions, a test set of 7 classes.

Layout: one folder per class, `<root>/<class>/*.jpg` (or the same one level down, e.g.
`<root>/FED-RO/<class>/`). The release spells neutral as `neural`; `labels.ALIASES` maps it (and
`angry`, `happiness`, ...). Fewer images than the 400 expected are reported, not fatal. Every
sample is occluded (meta `occluded=1`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fermixnet import labels
from fermixnet.data.base import DatasetReport, FERDataset
from fermixnet.data.folder import class_index, require_folder, scan_class_folders
from fermixnet.data.registry import check_split, register_dataset

EXPECTED = 400


def _is_class_folder(path: Path) -> bool:
    try:
        class_index(path.name, {}, str(path))
    except ValueError:
        return False
    return True


def _class_root(root: Path) -> Path:
    folders = [p for p in root.iterdir() if p.is_dir() and p.name[0] != "."]
    if any(_is_class_folder(p) for p in folders):
        return root
    if len(folders) == 1:
        return _class_root(folders[0])
    raise FileNotFoundError(
        f"fedro: no class folders (anger, disgust, fear, happy, neural/neutral, sad, surprise) "
        f"in {root}"
    )


@register_dataset("fedro")
def fedro_dataset(root: Path, split: str = "test", *, skip_bad: bool = False) -> FERDataset:
    """FED-RO, test only (split `test` or `all`), 7 classes.

    Args:
        root: the folder holding the class folders (or a folder with a single such subfolder).
        split: test or all.
        skip_bad: skip empty class folders and undecodable images (counted) instead of failing.

    Raises:
        ValueError: a folder that is not an expression (e.g. contempt, which FED-RO lacks).
    """
    split = check_split("fedro", split, ("test", "all"))
    require_folder("fedro", root)
    base = _class_root(root)
    report = DatasetReport(expected=EXPECTED)
    samples = scan_class_folders(
        base, {}, report, skip_bad=skip_bad, split="test"
    )
    if any(s.label >= 7 for s in samples):
        raise ValueError(f"fedro: {base} has a contempt folder; FED-RO has 7 classes")
    if len(samples) != EXPECTED:
        report.notes.append(f"found {len(samples)} images, {EXPECTED} expected")
    samples = [replace(s, meta={**s.meta, "occluded": "1"}) for s in samples]
    return FERDataset(
        samples, labels.class_names(7), name="fedro", root=root, split=split, report=report
    )
