"""`Sample` and `FERDataset`: what every adapter returns.

An adapter reads one on-disk format into a list of `Sample(path, label, meta)` with labels already
in the canonical order of `fermixnet.labels`; `FERDataset` adds image loading, per-class counts,
evaluation subsets taken from the meta, and a report of what was found, expected and skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fermixnet.data.imageio import ImageInfo, probe, read_rgb
from fermixnet.data.landmarks import meta_landmarks
from fermixnet.framing import Framing

# Meta keys whose values become `key=value` subsets (see `FERDataset.subsets`).
SUBSET_KEYS: tuple[str, ...] = ("occlusion", "occluder", "occlusion_type")
# Meta keys that are flags ("1") and become subsets of the same name.
FLAG_KEYS: tuple[str, ...] = ("pose>30", "pose>45")
_NOT_OCCLUDED = ("", "none", "0", "no", "false")


@dataclass(frozen=True)
class Sample:
    """One labelled image.

    Attributes:
        path: image file (or, for images stored inside a CSV, `<csv path>#<image id>`).
        label: canonical class index (`fermixnet.labels.CANONICAL`).
        meta: per-sample strings: split, occlusion, occluder, pose flags, source, ...
    """

    path: str
    label: int
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass
class DatasetReport:
    """What an adapter found while reading, for `data check` and logs.

    Attributes:
        expected: documented size of the split (e.g. 12,271 RAF-DB train images), if known.
        skipped: reason -> count of entries dropped (only with `skip_bad`, or by design such as
            AffectNet codes 8-10).
        notes: human-readable lines (list files matched, fewer images than expected, ...).
        sources: files whose content defines the samples (label lists, CSVs); part of cache keys.
        lists: subset list file name -> {"entries", "duplicates", "found", "missing",
            "label_mismatches"}: how many list entries were found among the images.
        skip_bad: the bad-sample policy the data set was read with (set by `create_dataset`);
            the cache skips undecodable images only when it is true.
    """

    expected: int | None = None
    skipped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    lists: dict[str, dict[str, int]] = field(default_factory=dict)
    skip_bad: bool = False

    def skip(self, reason: str, count: int = 1) -> None:
        """Count `count` entries dropped for `reason`."""
        self.skipped[reason] += count

    def to_dict(self) -> dict:
        """JSON-friendly copy."""
        return {
            "expected": self.expected,
            "skipped": dict(self.skipped),
            "notes": list(self.notes),
            "sources": list(self.sources),
            "lists": {k: dict(v) for k, v in self.lists.items()},
            "skip_bad": self.skip_bad,
        }


class FERDataset:
    """A list of samples with canonical labels, and the means to decode them.

    Args:
        samples: the samples, labels canonical.
        classes: class names of the protocol (`labels.class_names(7 or 8)`).
        name: adapter name (`rafdb`, `folder`, ...).
        root: the data folder it was read from.
        split: `train`, `val`, `test` or `all`.
        report: what the adapter found; a fresh one when omitted.
        expected_size: (H, W) of the released images when the format fixes it (RAF-DB aligned
            100x100, FER2013 48x48), used by `data check` to flag wrong sizes.

        points: (N, 5, 2) landmarks in pixels of each loaded image (NaN: none), for adapters
            that read them with the samples (AffectNet's CSV); default: the ``lm_*`` meta.

    Attributes:
        framing: how the images frame faces (set by `create_dataset` from the adapter's
            declaration or the spec's `framing=`).
        landmark_source: what `landmarks` gives: ``real`` (annotated or known exactly) or
            ``detected``.
        landmark_detector: the face detector the cache runs on samples without usable
            landmarks (a spec's ``detect_landmarks=``, set by `create_dataset`), or None.

    Raises:
        ValueError: a label outside `range(len(classes))`.
    """

    framing: Framing = Framing()
    landmark_source: str = "real"
    landmark_detector: str | None = None

    def __init__(
        self,
        samples: Sequence[Sample],
        classes: Sequence[str],
        *,
        name: str = "",
        root: str | Path | None = None,
        split: str = "all",
        report: DatasetReport | None = None,
        expected_size: tuple[int, int] | None = None,
        points: np.ndarray | None = None,
    ) -> None:
        self.samples: list[Sample] = list(samples)
        self.points = points
        self.classes: tuple[str, ...] = tuple(classes)
        self.name = name
        self.root = str(root) if root is not None else ""
        self.split = split
        self.report = report if report is not None else DatasetReport()
        self.expected_size = expected_size
        bad = [s for s in self.samples if not 0 <= s.label < len(self.classes)]
        if bad:
            raise ValueError(
                f"{name or 'dataset'}: label {bad[0].label} of {bad[0].path} is outside "
                f"0..{len(self.classes) - 1} ({len(self.classes)} classes)"
            )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        """(image (H, W, 3) uint8 RGB, canonical label)."""
        return self.load(index), self.samples[index].label

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, "
            f"n={len(self)}, classes={len(self.classes)})"
        )

    def load(self, index: int) -> np.ndarray:
        """Decode sample `index` as (H, W, 3) uint8 RGB (any mode converted, EXIF applied)."""
        return read_rgb(self.samples[index].path)

    def inspect(self, index: int) -> ImageInfo:
        """Stored mode and size of sample `index` (full decode, so corruption shows)."""
        return probe(self.samples[index].path)

    def sample_id(self, index: int) -> str:
        """A string that identifies the pixels of sample `index` (for cache keys)."""
        return self.samples[index].path

    def landmarks(self, index: int, height: int, width: int) -> np.ndarray | None:
        """Five landmarks (5, 2) of sample `index` in pixels of its loaded `height` x `width`
        image (`fermixnet.data.landmarks`), or None when the data set has none for it.

        Unchecked: the cache and `data check` refuse (and count) unusable points.
        """
        if self.points is not None:
            pts = np.asarray(self.points[index], np.float64)
            return None if np.isnan(pts).all() else pts
        return meta_landmarks(self.samples[index].meta, height, width)

    def detect_with(self, index: int) -> str | None:
        """The detector for sample `index` when it has no usable landmarks, or None
        (`fermixnet.data.landmark_detection`)."""
        return self.landmark_detector

    def validate(self, index: int, info: ImageInfo) -> None:
        """Raise `ImageReadError` if `load(index)` would refuse a file described by `info`.

        `data check` calls this with each file's probe, so it names everything the cache will
        refuse (e.g. an AffectNet face box outside its image) before it loads the sample.
        """

    def source_files(self, indices: Sequence[int] | None = None) -> list[str]:
        """Files whose size and mtime decide whether a cache of these samples is still valid.

        Args:
            indices: only these samples (all when None); list files in `report.sources` always.
        """
        chosen = self.samples if indices is None else [self.samples[i] for i in indices]
        return sorted({s.path for s in chosen} | set(self.report.sources))

    def labels(self) -> np.ndarray:
        """All labels as an int64 array of shape (N,)."""
        return np.fromiter((s.label for s in self.samples), dtype=np.int64, count=len(self))

    def class_counts(self) -> dict[str, int]:
        """Number of samples per class name, in class order."""
        counts = Counter(s.label for s in self.samples)
        return {name: counts.get(i, 0) for i, name in enumerate(self.classes)}

    def subsets(self) -> dict[str, list[int]]:
        """Evaluation subsets from the samples' meta.

        Keys: `occluded` (meta `occluded` == "1" or `occlusion` not none), `occlusion=<v>`,
        `occluder=<v>`, `occlusion_type=<UL|LR|C>`, `pose>30`, `pose>45`. Empty subsets are
        omitted.
        """
        out: dict[str, list[int]] = {}
        for i, sample in enumerate(self.samples):
            meta = sample.meta
            occlusion = str(meta.get("occlusion", "")).lower()
            if meta.get("occluded") == "1" or occlusion not in _NOT_OCCLUDED:
                out.setdefault("occluded", []).append(i)
            for key in SUBSET_KEYS:
                value = meta.get(key, "")
                if value != "":
                    out.setdefault(f"{key}={value}", []).append(i)
            for key in FLAG_KEYS:
                if meta.get(key) == "1":
                    out.setdefault(key, []).append(i)
        return out

    def subset(self, indices: Iterable[int], split: str | None = None) -> FERDataset:
        """A view with only `indices` (same loading, same report)."""
        return _SubsetDataset(self, list(indices), split)


class _SubsetDataset(FERDataset):
    """Some samples of a parent data set; loading goes through the parent."""

    def __init__(self, parent: FERDataset, indices: list[int], split: str | None) -> None:
        super().__init__(
            [parent.samples[i] for i in indices],
            parent.classes,
            name=parent.name,
            root=parent.root,
            split=split or parent.split,
            report=parent.report,
            expected_size=parent.expected_size,
        )
        self.parent = parent
        self.indices = indices
        self.framing = parent.framing
        self.landmark_source = parent.landmark_source
        self.landmark_detector = parent.landmark_detector

    def load(self, index: int) -> np.ndarray:
        return self.parent.load(self.indices[index])

    def inspect(self, index: int) -> ImageInfo:
        return self.parent.inspect(self.indices[index])

    def sample_id(self, index: int) -> str:
        return self.parent.sample_id(self.indices[index])

    def landmarks(self, index: int, height: int, width: int) -> np.ndarray | None:
        return self.parent.landmarks(self.indices[index], height, width)

    def detect_with(self, index: int) -> str | None:
        return self.parent.detect_with(self.indices[index])

    def validate(self, index: int, info: ImageInfo) -> None:
        self.parent.validate(self.indices[index], info)

    def source_files(self, indices: Sequence[int] | None = None) -> list[str]:
        chosen = self.indices if indices is None else [self.indices[i] for i in indices]
        return self.parent.source_files(chosen)
