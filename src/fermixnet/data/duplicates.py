"""Leakage and duplicate report: identical decoded images within a split, across splits, with
different labels, and near-constant (blank) images.

Images are compared by a hash of their decoded pixels (`fingerprint`: SHA-1 over the (H, W, 3)
uint8 array the model sees, shape included), so a PNG and a JPEG copy differ but a file copied
under another name, or the same CSV row twice, does not. SHA-1 rather than BLAKE2b: the duplicates
sought are accidental, not forged, and OpenSSL's SHA-1 (SHA-NI) hashed a 224x224 image in half
BLAKE2b's time on the development machine. `exclude_leaked=1` (a data spec
option of every adapter, see `registry.create_dataset`) drops a split's images whose pixels occur
in another split of the same data set, for a strictly held-out score.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from fermixnet.data.base import FERDataset
from fermixnet.data.imageio import ImageReadError

# Near-constant ("blank"): standard deviation of the pixel values below this (0..255 scale).
BLANK_STD = 2.0
MAX_EXAMPLES = 5
SPLIT_ORDER = ("train", "val", "test", "all")
LEAKED_REASON = "pixels also in another split (exclude_leaked)"
# How adapters say that a split does not exist (as opposed to a split that cannot be read).
_NO_SUCH_SPLIT = ("split must be one of", "split folder", "only split=all")


class Fingerprint(NamedTuple):
    """What the report needs of one image."""

    digest: bytes
    blank: bool


def fingerprint(image: np.ndarray) -> Fingerprint:
    """Hash of the decoded pixels (with their shape) and whether the image is near-constant
    (standard deviation below `BLANK_STD`, taken over at most about 64x64 evenly spaced pixels)."""
    h = hashlib.sha1(repr(image.shape).encode(), usedforsecurity=False)
    h.update(np.ascontiguousarray(image).data)
    step = max(1, max(image.shape[:2]) // 64)  # the spread of <= 64x64 pixels: 8x faster at 224
    return Fingerprint(h.digest(), bool(image[::step, ::step].std() < BLANK_STD))


def dataset_fingerprints(ds: FERDataset, workers: int | None = None) -> list[Fingerprint]:
    """`fingerprint` of every image of `ds`, decoded on a thread pool (PIL releases the GIL)."""
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda i: fingerprint(ds.load(i)), range(len(ds)), chunksize=64))


def _readable_fingerprints(ds: FERDataset, workers: int | None) -> list[Fingerprint | None]:
    """`dataset_fingerprints`, with None for an image that cannot be decoded when `ds` was read
    with `skip_bad` (the cache and `data check` skip and count it; it is no leak)."""
    if not ds.report.skip_bad:
        return list(dataset_fingerprints(ds, workers))

    def one(index: int) -> Fingerprint | None:
        try:
            return fingerprint(ds.load(index))
        except (ImageReadError, OSError, ValueError):
            return None

    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, range(len(ds)), chunksize=64))


@dataclass
class DuplicateReport:
    """Counts over all splits checked (JSON-friendly via `dataclasses.asdict`).

    Attributes:
        within_split: split -> images that repeat an earlier image of the same split.
        cross_split: "a/b" -> images of split b whose pixels also occur in split a (leakage).
        leaked: split -> images whose pixels occur in any other split (what `exclude_leaked=1`
            drops from that split).
        conflicting_groups: sets of identical images whose labels differ.
        conflicting_images: images in those sets.
        blank: split -> near-constant images (pixel std < `BLANK_STD`).
        examples: a few groups, as `split:id:label` strings (cross-split and conflicting first).
    """

    within_split: dict[str, int] = field(default_factory=dict)
    cross_split: dict[str, int] = field(default_factory=dict)
    leaked: dict[str, int] = field(default_factory=dict)
    conflicting_groups: int = 0
    conflicting_images: int = 0
    blank: dict[str, int] = field(default_factory=dict)
    examples: list[list[str]] = field(default_factory=list)


class Entry(NamedTuple):
    """One image as the report sees it."""

    split: str
    name: str
    label: int
    pixels: Fingerprint


def _count_group(group: list[Entry], splits: list[str], report: DuplicateReport) -> int:
    """Count one set of identical images; returns its rank for the examples (leak + conflict)."""
    in_split: dict[str, int] = defaultdict(int)
    for e in group:
        in_split[e.split] += 1
    leaked = len(in_split) > 1
    for split, count in in_split.items():
        report.within_split[split] += count - 1
        report.leaked[split] += count if leaked else 0
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            if in_split.get(a) and in_split.get(b):
                pair = f"{a}/{b}"
                report.cross_split[pair] = report.cross_split.get(pair, 0) + in_split[b]
    conflicting = len({e.label for e in group}) > 1
    if conflicting:
        report.conflicting_groups += 1
        report.conflicting_images += len(group)
    return int(leaked) + int(conflicting)


def _split_rank(split: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split)


def find_duplicates(entries: Sequence[Entry],
                    class_name: Callable[[int], str] = str) -> DuplicateReport:  # fmt: skip
    """Count identical images within and across splits, conflicting labels and blank images."""
    splits = sorted({e.split for e in entries}, key=_split_rank)
    report = DuplicateReport(within_split=dict.fromkeys(splits, 0), leaked=dict.fromkeys(splits, 0),
                             blank=dict.fromkeys(splits, 0))  # fmt: skip
    by_digest: dict[bytes, list[Entry]] = defaultdict(list)
    for e in entries:
        by_digest[e.pixels.digest].append(e)
        report.blank[e.split] += e.pixels.blank
    groups = [g for g in by_digest.values() if len(g) > 1]
    ranks = [_count_group(g, splits, report) for g in groups]
    shown = sorted(range(len(groups)), key=lambda k: -ranks[k])[:MAX_EXAMPLES]
    report.examples = [[f"{e.split}:{e.name}:{class_name(e.label)}" for e in groups[k]]
                       for k in shown]  # fmt: skip
    return report


def format_duplicates(report: DuplicateReport) -> list[str]:
    """Human-readable lines (empty when there is nothing to say)."""
    lines = []
    for pair, count in report.cross_split.items():
        a, b = pair.split("/")
        lines.append(f"  warning: {count} {b} images also occur in {a} (leakage; "
                     "exclude_leaked=1 drops them for a strictly held-out score)")  # fmt: skip
    for split, count in report.within_split.items():
        if count:
            lines.append(f"  warning: {count} {split} images repeat another {split} image")
    if report.conflicting_groups:
        lines.append(f"  warning: {report.conflicting_groups} sets of identical images carry "
                     f"different labels ({report.conflicting_images} images)")  # fmt: skip
    for split, count in report.blank.items():
        if count:
            lines.append(f"  warning: {count} near-constant (blank) {split} images")
    if lines:
        lines += [f"    e.g. {', '.join(group)}" for group in report.examples]
    return lines


def _other_splits(name: str, split: str, open_split: Callable[[str], FERDataset],
                  own_ids: list[str]) -> list[FERDataset]:  # fmt: skip
    others = []
    for other in ("train", "val", "test"):
        if other == split:
            continue
        try:
            ds = open_split(other)
        except (ValueError, FileNotFoundError) as err:
            if any(words in str(err) for words in _NO_SUCH_SPLIT):
                continue  # the data set has no such split
            raise  # a split that exists but cannot be read must not be silently left out
        if [ds.sample_id(i) for i in range(len(ds))] != own_ids:  # AffectNet: val is test
            others.append(ds)
    return others


def drop_leaked(ds: FERDataset, name: str, open_split: Callable[[str], FERDataset],
                workers: int | None = None) -> FERDataset:  # fmt: skip
    """`ds` without the images whose pixels occur in another split of the same data set.

    The number dropped is counted in `ds.report.skipped` under `LEAKED_REASON`.

    Args:
        ds: the split to filter.
        name: the adapter, named in errors.
        open_split: reads another split of the same data set with the same adapter options
            (`registry.create_dataset` passes its reader, so this module needs no registry).
        workers: decoding threads.

    Raises:
        ValueError: `ds` is the `all` split (there is no other split to compare with).
    """
    if ds.split == "all":
        raise ValueError(f"{name}: exclude_leaked=1 needs a split (train, val or test), not all")
    own_ids = [ds.sample_id(i) for i in range(len(ds))]
    seen: set[bytes] = set()
    others = _other_splits(name, ds.split, open_split, own_ids)
    for other in others:
        seen.update(p.digest for p in _readable_fingerprints(other, workers) if p is not None)
    mine = _readable_fingerprints(ds, workers)
    keep = [i for i, p in enumerate(mine) if p is None or p.digest not in seen]
    if len(keep) < len(ds):
        ds.report.skip(LEAKED_REASON, len(ds) - len(keep))
    compared = ", ".join(o.split for o in others) or "no other split"
    ds.report.notes.append(f"exclude_leaked: {len(ds) - len(keep)} of {len(ds)} {ds.split} images "
                           f"dropped (their pixels occur in {compared})")
    return ds.subset(keep) if len(keep) < len(ds) else ds
