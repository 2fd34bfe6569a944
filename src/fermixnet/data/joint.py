"""Joint training on several data sets (Sec. 4.1.4: RAF-DB + AffectNet, evaluated on FED-RO).

Adapters already give canonical labels, so reconciling label maps reduces to choosing the protocol:
7 classes (contempt samples dropped, counted per source) or 8. Each sample's meta gains `source`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from fermixnet import labels
from fermixnet.data.base import DatasetReport, FERDataset
from fermixnet.data.imageio import ImageInfo
from fermixnet.data.registry import create_dataset, parse_data_spec


class ConcatFERDataset(FERDataset):
    """Several `FERDataset`s as one, on a common 7- or 8-class protocol.

    Args:
        datasets: the members.
        num_classes: 7 or 8; default the smallest member protocol (7 if any member is 7-class).

    Raises:
        ValueError: no members, or `num_classes` not 7/8.
    """

    def __init__(self, datasets: Sequence[FERDataset], num_classes: int | None = None) -> None:
        if not datasets:
            raise ValueError("ConcatFERDataset needs at least one data set")
        n = num_classes if num_classes is not None else min(len(d.classes) for d in datasets)
        classes = labels.class_names(n)
        report = DatasetReport(skip_bad=all(d.report.skip_bad for d in datasets))
        samples, where = [], []
        for member, ds in enumerate(datasets):
            dropped = 0
            for local, sample in enumerate(ds.samples):
                if sample.label >= n:
                    dropped += 1
                    continue
                source = ds.name or f"set{member}"
                samples.append(replace(sample, meta={**sample.meta, "source": source}))
                where.append((member, local))
            if dropped:
                report.skip(f"contempt from {ds.name} ({n}-class protocol)", dropped)
            report.notes.append(f"{ds.name}:{ds.split}: {len(ds) - dropped} samples")
            report.sources.extend(ds.report.sources)
        super().__init__(
            samples, classes, name="+".join(d.name for d in datasets),
            split=datasets[0].split, report=report,
        )  # fmt: skip
        self.datasets = list(datasets)
        self._where = np.asarray(where, dtype=np.int64).reshape(-1, 2)

    def _member(self, index: int) -> tuple[FERDataset, int]:
        member, local = self._where[index]
        return self.datasets[int(member)], int(local)

    def load(self, index: int) -> np.ndarray:
        ds, local = self._member(index)
        return ds.load(local)

    def inspect(self, index: int) -> ImageInfo:
        ds, local = self._member(index)
        return ds.inspect(local)

    def sample_id(self, index: int) -> str:
        ds, local = self._member(index)
        return f"{ds.name}:{ds.sample_id(local)}"

    def validate(self, index: int, info: ImageInfo) -> None:
        ds, local = self._member(index)
        ds.validate(local, info)

    def landmarks(self, index: int, height: int, width: int) -> np.ndarray | None:
        ds, local = self._member(index)
        return ds.landmarks(local, height, width)

    def detect_with(self, index: int) -> str | None:
        ds, local = self._member(index)
        return ds.detect_with(local)

    def source_files(self, indices: Sequence[int] | None = None) -> list[str]:
        chosen = range(len(self)) if indices is None else indices
        files: set[str] = set(self.report.sources)
        for member, ds in enumerate(self.datasets):
            mine = [int(loc) for m, loc in self._where[list(chosen)] if m == member]
            if mine:
                files.update(ds.source_files(mine))
        return sorted(files)


def open_datasets(
    specs: Sequence[str], split: str, num_classes: int | None = None
) -> FERDataset:
    """One data set from one or more CLI specs (`name:root[,key=value]`); several are joined.

    Raises:
        ValueError / FileNotFoundError: from `parse_data_spec` and the adapters.
    """
    members = []
    for spec in specs:
        name, root, options = parse_data_spec(spec)
        members.append(create_dataset(name, root, split, **options))
    if len(members) == 1 and num_classes in (None, len(members[0].classes)):
        return members[0]
    return ConcatFERDataset(members, num_classes)
