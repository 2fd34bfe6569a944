"""A built image cache (`fermixnet.data.cache.build_cache` makes it): the memory-mapped images,
their labels, subsets and landmarks (`CachedImages`), the torch `Dataset` over them
(`ImageTensorDataset`) and what was skipped while decoding (`skip_records`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.data

from fermixnet.data.landmarks import SOURCES, TEMPLATE

MAX_LISTED = 20  # decode errors listed by name in `CachedImages.skip_record`


class CachedImages:
    """A built cache: images (memory-mapped), labels, subsets. Picklable (reopens the file).

    Attributes:
        path: the `.npy` file.
        labels: (N,) int64 canonical labels, in cache order.
        indices: (N,) int64 index of each cached image in the source data set.
        classes: class names of the protocol.
        size: (H, W).
        subsets: evaluation subsets as positions in this cache.
        skipped: [(dataset index, reason)] of samples that failed to decode (with `on_error=skip`).
        policy: the `on_error` it was built with (`raise` or `skip`).
        read_skipped: reason -> count of entries the adapter dropped before decoding (malformed
            lines, missing files, ignored files, ...; `DatasetReport.skipped`).
    """

    def __init__(self, path: str | Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.key: str = meta["key"]
        self.rows = np.asarray(meta["rows"], dtype=np.int64)
        self.labels = np.asarray(meta["labels"], dtype=np.int64)
        self.indices = np.asarray(meta["indices"], dtype=np.int64)
        self.classes: tuple[str, ...] = tuple(meta["classes"])
        self.size: tuple[int, int] = (int(meta["size"][0]), int(meta["size"][1]))
        self.subsets: dict[str, list[int]] = {k: list(v) for k, v in meta["subsets"].items()}
        self.skipped: list[tuple[int, str]] = [tuple(x) for x in meta.get("skipped", [])]
        self.policy: str = meta.get("on_error", "raise")
        self.read_skipped: dict[str, int] = dict(meta.get("read_skipped", {}))
        self.meta = meta
        self._images: np.ndarray | None = None
        self._landmarks: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def images(self) -> np.ndarray:
        """The stored array (rows, H, W, 3) uint8, opened read-only on first use."""
        if self._images is None:
            self._images = np.load(self.path, mmap_mode="r")
        return self._images

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def landmark_path(self) -> Path:
        """The `.lmk.npz` file beside the images."""
        return self.path.with_suffix(".lmk.npz")

    @property
    def landmark_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(points (rows, 5, 2) float32, source (rows,) uint8)`` as stored, read on first use
        (`fermixnet.data.landmarks`: 0 template, 1 real, 2 detected)."""
        if self._landmarks is None:
            with np.load(self.landmark_path, allow_pickle=False) as npz:
                self._landmarks = (npz["points"], npz["source"])
        return self._landmarks

    def landmarks(
        self, indices: Sequence[int] | np.ndarray | torch.Tensor, face_only: bool = True
    ) -> torch.Tensor:
        """Landmarks of the images at `indices`: float32 (B, 5, 2) in cached pixels.

        Args:
            indices: positions in this cache.
            face_only: NaN rows for samples whose points are only the framing's template (what
                the landmark mixer reads as "use the fixed regions").
        """
        idx = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
        points, source = self.landmark_arrays
        pts = np.array(points[self.rows[idx]], dtype=np.float32)
        if face_only:
            pts[source[self.rows[idx]] == TEMPLATE] = np.nan
        return torch.from_numpy(pts)

    def landmark_counts(self) -> dict[str, int]:
        """How many cached images have `real`, `detected` or `template` landmarks."""
        source = self.landmark_arrays[1][self.rows]
        return {name: int((source == code).sum()) for code, name in enumerate(SOURCES)}

    def skip_record(self) -> dict[str, Any]:
        """What this cache lacks compared with the data folder, and why (for run folders).

        Returns:
            {"dataset", "split", "root", "on_error", "images", "skipped": {reason: count},
            "undecodable": first `MAX_LISTED` decode errors, "landmarks": images per landmark
            source}, and with landmark detection "landmark_misses" and "undetected_landmarks"
            (its first `MAX_LISTED` misses); `skipped` adds the adapter's counts
            (`read_skipped`) to `undecodable image` (decode failures, `on_error=skip`).
        """
        skipped = dict(self.read_skipped)
        if self.skipped:
            skipped["undecodable image"] = len(self.skipped)
        detection = {k: self.meta[k] for k in ("landmark_misses", "undetected_landmarks")
                     if k in self.meta}  # fmt: skip
        return {
            "dataset": self.meta.get("dataset", ""), "split": self.meta.get("split", ""),
            "root": self.meta.get("root", ""), "on_error": self.policy, "images": len(self),
            "skipped": skipped, "undecodable": [r for _, r in self.skipped[:MAX_LISTED]],
            "landmarks": self.landmark_counts(), **detection,
        }  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_images"] = None  # workers reopen the memmap instead of copying the data
        state["_landmarks"] = None
        return state

    def image(self, index: int) -> np.ndarray:
        """Image `index` as a writable (H, W, 3) uint8 copy."""
        return np.array(self.images[self.rows[index]])

    def batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Images at `indices` as a uint8 tensor (B, 3, H, W) (one gather, one copy)."""
        idx = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
        gathered = np.asarray(self.images[self.rows[idx]])  # fancy indexing: one copy
        return torch.from_numpy(gathered).permute(0, 3, 1, 2)  # (B, 3, H, W)

    def tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        """All images as one uint8 tensor (N, 3, H, W), e.g. to keep a small set on the GPU."""
        return self.batch(np.arange(len(self))).to(device or "cpu")


class ImageTensorDataset(torch.utils.data.Dataset):
    """A torch Dataset over a cache: `(uint8 tensor (3, H, W), int label)`, and with
    ``landmarks=True`` a third item, the float32 (5, 2) landmarks (NaN: only the template).

    Args:
        cached: a `CachedImages`.
        transform: optional callable on the uint8 (3, H, W) tensor (torchvision.transforms.v2);
            with landmarks it is called as ``transform(image, points)`` and must return both
            (the presets of `fermixnet.augment.transforms` do).
        landmarks: also return each image's landmarks.
    """

    def __init__(
        self, cached: CachedImages, transform: Callable | None = None, landmarks: bool = False
    ) -> None:
        self.cached = cached
        self.transform = transform
        self.labels = cached.labels
        self.classes = cached.classes
        self.with_landmarks = landmarks

    def __len__(self) -> int:
        return len(self.cached)

    def __getitem__(self, index: int) -> tuple:
        image = torch.from_numpy(self.cached.image(index)).permute(2, 0, 1)  # (3, H, W)
        if self.with_landmarks:
            points = self.cached.landmarks([index])[0]  # (5, 2)
            if self.transform is not None:
                image, points = self.transform(image, points)
            return image, int(self.labels[index]), points
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


def skip_records(*datasets: Any) -> list[dict[str, Any]]:
    """`CachedImages.skip_record` of every cache under torch datasets, once per cache.

    Walks `Subset`, `ConcatDataset` and `ImageTensorDataset` (None entries are ignored), so a run
    can record in its folder how many images each of its data sets skipped and why.
    """
    records: dict[str, dict[str, Any]] = {}
    stack = [d for d in datasets if d is not None]
    while stack:
        ds = stack.pop(0)
        if isinstance(ds, ImageTensorDataset):
            records.setdefault(ds.cached.key, ds.cached.skip_record())
        elif isinstance(ds, torch.utils.data.Subset):
            stack.append(ds.dataset)
        elif isinstance(ds, torch.utils.data.ConcatDataset):
            stack.extend(ds.datasets)
    return list(records.values())
