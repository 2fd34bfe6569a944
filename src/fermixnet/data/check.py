"""`fermixnet data check`: what a data folder holds, and what is wrong with it.

Per split: images found vs expected, counts per class, unreadable images (corrupt, truncated),
duplicate entries, stored modes that are converted on load (grayscale, palette, RGBA, CMYK,
16-bit), sizes that differ from the release's, entries skipped by the adapter, subset lists
matched, and how many samples have real, detected or only template landmarks (with the files whose
landmarks are unusable: outside the image, NaN, eyes on one point; and, with a spec's
`detect_landmarks=`, the files where the detector found no usable face; the cache uses the template
for them). Over all splits: the leakage and duplicate report of `duplicates` (identical decoded
images within and across splits, with different labels, and blank images). Errors (the split cannot
be read, or images cannot be decoded) make `CheckResult.ok` false; the rest are warnings.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from fermixnet.data.base import FERDataset
from fermixnet.data.duplicates import (
    DuplicateReport,
    Entry,
    Fingerprint,
    find_duplicates,
    fingerprint,
    format_duplicates,
)
from fermixnet.data.imageio import ImageInfo, ImageReadError
from fermixnet.data.landmark_detection import DetectorFactory, LandmarkDetection
from fermixnet.data.landmarks import SOURCES, resolve_landmarks
from fermixnet.data.registry import check_options, create_dataset

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
    kinds: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    wrong_size: int = 0
    expected_size: list[int] | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    lists: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skip_bad: bool = False
    subsets: dict[str, int] = field(default_factory=dict)
    framing: str = ""
    landmarks: dict[str, int] = field(default_factory=dict)
    bad_landmarks: int = 0
    bad_landmark_files: list[str] = field(default_factory=list)
    undetected: int = 0
    """Samples where the spec's `detect_landmarks=` detector found no usable face."""
    undetected_files: list[str] = field(default_factory=list)

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
    duplicates: DuplicateReport = field(default_factory=DuplicateReport)
    label: str = ""
    """The spec's `name=` option (the set's name in reports), or empty."""

    @property
    def ok(self) -> bool:
        """True when every split is ok."""
        return all(s.ok for s in self.splits)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict, with `ok` per split and overall."""
        splits = [{**asdict(s), "ok": s.ok} for s in self.splits]
        return {"name": self.name, "root": self.root, "label": self.label, "ok": self.ok,
                "splits": splits, "duplicates": asdict(self.duplicates)}  # fmt: skip


_Found = tuple[ImageInfo | None, str, Fingerprint | None, int, str, str]


def _inspect(ds: FERDataset, index: int, detect: LandmarkDetection | None) -> _Found:
    """(info or None, error message, fingerprint of the decoded pixels, landmark source code,
    landmark problem, detector's miss) of one sample."""
    try:
        info = ds.inspect(index)
        ds.validate(index, info)  # what `load` would refuse beyond decoding (face boxes)
        image = ds.load(index)
        shape = image.shape[:2]
        found = resolve_landmarks(ds, index, shape, shape, image, detect)
        return info, "", fingerprint(image), found.code, found.problem, found.missed
    except (ImageReadError, *_READ_ERRORS) as err:
        return None, str(err), None, 0, "", ""


def check_split(
    ds: FERDataset, workers: int | None = None, detect: LandmarkDetection | None = None
) -> SplitCheck:
    """Decode every image of `ds` once and collect the findings (with `detect`, the landmark
    detectors its samples ask for run as the cache would run them)."""
    return _check_split(ds, workers, detect)[0]


def _check_split(
    ds: FERDataset, workers: int | None = None, detect: LandmarkDetection | None = None
) -> tuple[SplitCheck, list[Entry]]:
    """`check_split` and the entries of the duplicate report."""
    result = SplitCheck(split=ds.split, images=len(ds), expected=ds.report.expected,
                        skip_bad=ds.report.skip_bad)  # fmt: skip
    result.per_class = ds.class_counts()
    result.skipped = dict(ds.report.skipped)
    result.lists = {k: dict(v) for k, v in ds.report.lists.items()}
    result.notes = list(ds.report.notes)
    result.subsets = {k: len(v) for k, v in sorted(ds.subsets().items())}
    result.framing = str(ds.framing) if ds.framing is not None else ""
    result.expected_size = list(ds.expected_size) if ds.expected_size else None
    ids = Counter(ds.sample_id(i) for i in range(len(ds)))
    result.duplicate_entries = sum(c - 1 for c in ids.values() if c > 1)
    kinds, sizes, entries, marks = Counter(), Counter(), [], Counter()
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        found = pool.map(lambda i: _inspect(ds, i, detect), range(len(ds)), chunksize=64)
        for i, (info, error, printed, code, problem, missed) in enumerate(found):
            if info is None or printed is None:
                result.unreadable.append(error)
                continue
            marks[SOURCES[code]] += 1
            if problem:
                result.bad_landmarks += 1
                if len(result.bad_landmark_files) < MAX_EXAMPLES:
                    result.bad_landmark_files.append(f"{ds.samples[i].path}: {problem}")
            if missed:
                result.undetected += 1
                if len(result.undetected_files) < MAX_EXAMPLES:
                    result.undetected_files.append(f"{ds.samples[i].path}: {missed}")
            kinds[info.kind] += 1
            sizes[f"{info.width}x{info.height}"] += 1
            if ds.expected_size and (info.height, info.width) != tuple(ds.expected_size):
                result.wrong_size += 1
            sample = ds.samples[i]  # split=all: each sample's own split, for the leakage counts
            split = sample.meta.get("split") or ds.split
            entries.append(Entry(split, ds.sample_id(i), sample.label, printed))
    result.kinds, result.sizes = dict(kinds), dict(sizes.most_common(MAX_EXAMPLES))
    result.landmarks = {name: marks[name] for name in SOURCES}
    if result.skip_bad and result.unreadable:
        result.skipped["undecodable image"] = len(result.unreadable)
    if len(ds) == len(result.unreadable):  # train and cache refuse a data set without images
        result.error = f"no {'readable ' if len(ds) else ''}images in split {ds.split!r}"
    return result, entries


def _splits_to_check(name: str, splits: list[str] | None) -> list[str]:
    return list(splits or DEFAULT_SPLITS.get(name, ("train", "val", "test")))


def check_dataset(
    name: str,
    root: str,
    options: dict[str, Any] | None = None,
    splits: list[str] | None = None,
    workers: int | None = None,
    detectors: DetectorFactory | None = None,
) -> CheckResult:
    """Read and decode each split of a data set; never raises for problems in the data.

    Args:
        name: adapter name.
        root: data folder.
        options: the spec's options (e.g. `skip_bad`); a `split=` option checks that split only.
        splits: splits to check; default per adapter (folder/manifest: those present, else all).
        workers: decoding threads.
        detectors: builds the spec's `detect_landmarks=` detector
            (`fermixnet.inference.faces.landmark_detector`); needed only then.

    Raises:
        ValueError: a bad spec option (`registry.check_options`), `splits` and the spec's
            `split=` option name different splits, or a `detect_landmarks=` detector that is
            unknown, not installed or without a `detectors` factory.
    """
    options = dict(options or {})
    check_options(name, options)
    detector = str(options.get("detect_landmarks") or "").strip()
    detect = LandmarkDetection([detector], detectors) if detector else None
    label = str(options.get("name") or "")
    if options.get("split"):
        own = options.pop("split")
        if splits and splits != [own]:
            raise ValueError(f"{name}: --split {' '.join(splits)} conflicts with the spec's "
                             f"split={own}; give one of them")  # fmt: skip
        splits = [own]
    requested = splits is not None or name in DEFAULT_SPLITS
    results, entries, classes = [], [], ()
    for split in _splits_to_check(name, splits):
        try:
            ds = create_dataset(name, root, split, **options)
        except _READ_ERRORS as err:  # OSError: e.g. a list we may not read
            absent = "split folder" in str(err) or "only split=all" in str(err)
            if absent and not requested:
                continue  # a generic layout without this split
            results.append(SplitCheck(split=split, error=str(err)))
            continue
        if len(ds) == 0 and not requested and name == "manifest":
            continue
        checked, found = _check_split(ds, workers, detect)
        results.append(checked)
        entries += _distinct(found, entries)
        classes = ds.classes
    if not results:
        try:
            everything = create_dataset(name, root, "all", **options)
            checked, entries = _check_split(everything, workers, detect)
            results.append(checked)
            classes = everything.classes
        except _READ_ERRORS as err:
            results.append(SplitCheck(split="all", error=str(err)))
    duplicates = find_duplicates(entries, lambda label: classes[label])
    return CheckResult(name=name, root=str(root), splits=results, duplicates=duplicates,
                       label=label)


def _distinct(found: list[Entry], before: list[Entry]) -> list[Entry]:
    """`found`, or nothing when it is the same images as a split already seen (AffectNet's val
    and test read one set; comparing them would call every image leaked)."""
    ids = [e.name for e in found]
    for split in {e.split for e in before}:
        if [e.name for e in before if e.split == split] == ids:
            return []
    return found


def format_check(result: CheckResult) -> str:
    """Human-readable report, one block per split, problems last."""
    named = f" (name {result.label})" if result.label else ""
    lines = [f"{result.name} at {result.root}{named}: {'OK' if result.ok else 'ERRORS'}"]
    for s in result.splits:
        if s.error and not s.images:
            lines.append(f"  {s.split}: ERROR {s.error}")
            continue
        expected = f" (expected {s.expected})" if s.expected is not None else ""
        lines.append(f"  {s.split}: {s.images} images{expected}")
        lines.append("    per class: " + ", ".join(f"{k} {v}" for k, v in s.per_class.items()))
        lines.append("    stored as: " + ", ".join(f"{k} {v}" for k, v in s.kinds.items()))
        lines.append("    sizes: " + ", ".join(f"{k} {v}" for k, v in s.sizes.items()))
        if s.framing:
            lines.append(f"    framing: {s.framing}")
        if s.subsets:
            lines.append("    subsets: " + ", ".join(f"{k} {v}" for k, v in s.subsets.items()))
        lines.append("    landmarks: " + ", ".join(f"{k} {v}" for k, v in s.landmarks.items()))
        if s.bad_landmarks:
            lines.append(f"    warning: {s.bad_landmarks} samples have unusable landmarks "
                         "(the template is used)")
            lines.extend(f"      {e}" for e in s.bad_landmark_files)
        if s.undetected:
            lines.append(f"    warning: {s.undetected} samples where the landmark detector found "
                         "no usable face (the template is used)")
            lines.extend(f"      {e}" for e in s.undetected_files)
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
        if s.unreadable:
            level = "skipped (skip_bad)" if s.skip_bad else "ERROR"
            lines.append(f"    {level}: {len(s.unreadable)} unreadable images")
            lines.extend(f"      {e}" for e in s.unreadable[:MAX_EXAMPLES])
    lines.extend(format_duplicates(result.duplicates))
    return "\n".join(lines)
