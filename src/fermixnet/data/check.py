"""`fermixnet data check`: what a data folder holds, and what is wrong with it.

Per split: images found vs expected, counts per class, unreadable images (corrupt, truncated),
duplicate entries and duplicate contents, stored modes that are converted on load (grayscale,
palette, RGBA, CMYK, 16-bit), sizes that differ from the release's, entries skipped by the adapter
and subset lists matched. Errors (the split cannot be read, or images cannot be decoded) make
`CheckResult.ok` false; the rest are warnings.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from fermixnet.data.base import FERDataset
from fermixnet.data.imageio import ImageInfo, ImageReadError, probe
from fermixnet.data.registry import create_dataset

DEFAULT_SPLITS = {
    "rafdb": ("train", "test"),
    "ferplus": ("train", "val", "test"),
    "affectnet": ("train", "val"),
    "fedro": ("test",),
}
MAX_EXAMPLES = 10
# What reading a malformed data folder may raise; anything else is a bug, not a data problem.
_READ_ERRORS = (ValueError, OSError, EOFError, csv.Error)


@dataclass
class SplitCheck:
    """Findings for one split (JSON-friendly via `dataclasses.asdict`)."""

    split: str
    images: int = 0
    expected: int | None = None
    per_class: dict[str, int] = field(default_factory=dict)
    error: str = ""
    unreadable: list[str] = field(default_factory=list)
    duplicate_entries: int = 0
    duplicate_contents: list[list[str]] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    wrong_size: int = 0
    expected_size: list[int] | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    lists: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skip_bad: bool = False

    @property
    def ok(self) -> bool:
        """No error, and every image decodable unless `skip_bad` (the cache then skips them)."""
        return not self.error and (self.skip_bad or not self.unreadable)


@dataclass
class CheckResult:
    """All splits of one data set."""

    name: str
    root: str
    splits: list[SplitCheck]

    @property
    def ok(self) -> bool:
        """True when every split is ok."""
        return all(s.ok for s in self.splits)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict, with `ok` per split and overall."""
        splits = [{**asdict(s), "ok": s.ok} for s in self.splits]
        return {"name": self.name, "root": self.root, "ok": self.ok, "splits": splits}


def _inspect(ds: FERDataset, index: int) -> tuple[ImageInfo | None, str, str]:
    """(info or None, error message, content digest) of one sample."""
    path = ds.samples[index].path
    try:
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                data = handle.read()
            digest = hashlib.sha1(data).hexdigest()
            suffix = ds.sample_id(index)[len(path) :]  # e.g. a face box on the same file
            info = probe(path, data)
            ds.validate(index, info)  # what `load` would refuse beyond decoding (face boxes)
            return info, "", digest + suffix
        info = ds.inspect(index)
        return info, "", hashlib.sha1(ds.load(index).tobytes()).hexdigest()
    except (ImageReadError, FileNotFoundError, OSError) as err:
        return None, str(err), ""


def check_split(ds: FERDataset, workers: int | None = None) -> SplitCheck:
    """Decode every image of `ds` once and collect the findings."""
    result = SplitCheck(split=ds.split, images=len(ds), expected=ds.report.expected,
                        skip_bad=ds.report.skip_bad)  # fmt: skip
    result.per_class = ds.class_counts()
    result.skipped = dict(ds.report.skipped)
    result.lists = {k: dict(v) for k, v in ds.report.lists.items()}
    result.notes = list(ds.report.notes)
    result.expected_size = list(ds.expected_size) if ds.expected_size else None
    ids = Counter(ds.sample_id(i) for i in range(len(ds)))
    result.duplicate_entries = sum(c - 1 for c in ids.values() if c > 1)
    kinds, sizes, by_digest = Counter(), Counter(), defaultdict(list)
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        found = pool.map(lambda i: _inspect(ds, i), range(len(ds)))
        for i, (info, error, digest) in enumerate(found):
            if info is None:
                result.unreadable.append(error)
                continue
            kinds[info.kind] += 1
            sizes[f"{info.width}x{info.height}"] += 1
            if ds.expected_size and (info.height, info.width) != tuple(ds.expected_size):
                result.wrong_size += 1
            by_digest[digest].append(ds.samples[i].path)
    result.kinds, result.sizes = dict(kinds), dict(sizes.most_common(MAX_EXAMPLES))
    if result.skip_bad and result.unreadable:
        result.skipped["undecodable image"] = len(result.unreadable)
    if len(ds) == len(result.unreadable):  # train and cache refuse a data set without images
        result.error = f"no {'readable ' if len(ds) else ''}images in split {ds.split!r}"
    result.duplicate_contents = [sorted(set(p)) for p in by_digest.values() if len(p) > 1]
    return result


def _splits_to_check(name: str, splits: list[str] | None) -> list[str]:
    return list(splits or DEFAULT_SPLITS.get(name, ("train", "val", "test")))


def check_dataset(
    name: str,
    root: str,
    options: dict[str, Any] | None = None,
    splits: list[str] | None = None,
    workers: int | None = None,
) -> CheckResult:
    """Read and decode each split of a data set; never raises for problems in the data.

    Args:
        name: adapter name.
        root: data folder.
        options: adapter options (e.g. `skip_bad`).
        splits: splits to check; default per adapter (folder/manifest: those present, else all).
        workers: decoding threads.
    """
    requested = splits is not None or name in DEFAULT_SPLITS
    results = []
    for split in _splits_to_check(name, splits):
        try:
            ds = create_dataset(name, root, split, **(options or {}))
        except _READ_ERRORS as err:  # OSError: e.g. a list we may not read
            absent = "split folder" in str(err) or "only split=all" in str(err)
            if absent and not requested:
                continue  # a generic layout without this split
            results.append(SplitCheck(split=split, error=str(err)))
            continue
        if len(ds) == 0 and not requested and name == "manifest":
            continue
        results.append(check_split(ds, workers))
    if not results:
        try:
            everything = create_dataset(name, root, "all", **(options or {}))
            results.append(check_split(everything, workers))
        except _READ_ERRORS as err:
            results.append(SplitCheck(split="all", error=str(err)))
    return CheckResult(name=name, root=str(root), splits=results)


def format_check(result: CheckResult) -> str:
    """Human-readable report, one block per split, problems last."""
    lines = [f"{result.name} at {result.root}: {'OK' if result.ok else 'ERRORS'}"]
    for s in result.splits:
        if s.error and not s.images:
            lines.append(f"  {s.split}: ERROR {s.error}")
            continue
        expected = f" (expected {s.expected})" if s.expected is not None else ""
        lines.append(f"  {s.split}: {s.images} images{expected}")
        lines.append("    per class: " + ", ".join(f"{k} {v}" for k, v in s.per_class.items()))
        lines.append("    stored as: " + ", ".join(f"{k} {v}" for k, v in s.kinds.items()))
        lines.append("    sizes: " + ", ".join(f"{k} {v}" for k, v in s.sizes.items()))
        if s.wrong_size:
            want = "x".join(map(str, reversed(s.expected_size or [])))
            lines.append(f"    warning: {s.wrong_size} images are not {want}")
        for reason, count in s.skipped.items():
            lines.append(f"    skipped: {count} {reason}")
        lines.extend(f"    note: {note}" for note in s.notes)
        if s.error:
            lines.append(f"    ERROR: {s.error}")
        if s.duplicate_entries:
            lines.append(f"    warning: {s.duplicate_entries} duplicate entries")
        for group in s.duplicate_contents[:MAX_EXAMPLES]:
            lines.append(f"    warning: identical images: {', '.join(group)}")
        if s.unreadable:
            level = "skipped (skip_bad)" if s.skip_bad else "ERROR"
            lines.append(f"    {level}: {len(s.unreadable)} unreadable images")
            lines.extend(f"      {e}" for e in s.unreadable[:MAX_EXAMPLES])
    return "\n".join(lines)
