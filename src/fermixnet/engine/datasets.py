"""From `data.*` specs to torch datasets: uint8 caches, the seeded stratified validation split,
class-balanced down-sampling (AffectNet, Sec. 4.2) and the joint RAF-DB + AffectNet training set
of the FED-RO protocol (Sec. 4.1.4)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from fermixnet.config import Config, check_data_spec


@dataclass
class TestSet:
    """One test set: its name in reports, the dataset and its named subsets."""

    name: str
    dataset: Dataset
    subsets: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class TrainSets:
    """Training and validation datasets of a run (uint8 images, integer canonical labels)."""

    train: Dataset
    val: Dataset | None
    train_labels: list[int]
    plain: Subset
    """The training images without augmentation, in `train`'s order (a `Subset` of a
    `ConcatDataset` of caches: the on-device path stacks it, the FERMix sample grid draws it)."""


def _open(spec: str, split: str, key: str, classes: Sequence[str]) -> tuple[str, Any]:
    """Open the `split` of a `name:root[,k=v]` spec; check the root and the class list."""
    from fermixnet.data import create_dataset, parse_data_spec

    check_data_spec(spec, key)
    name, root, opts = parse_data_spec(spec)
    opts = dict(opts)
    split = opts.pop("split", split)
    ds = create_dataset(name, root, split, **opts)
    if tuple(ds.classes) != tuple(classes):
        raise ValueError(
            f"{key}: {spec!r} ({split}) has classes {list(ds.classes)} but the model is trained on "
            f"{list(classes)}; set model.num_classes={len(ds.classes)} or the dataset's class "
            "option"
        )
    if len(ds) == 0:
        raise ValueError(f"{key}: {spec!r} has no samples in split {split!r}")
    return name, ds


def _cached(ds: Any, size: int, cache_dir: Path | None, transform: Callable | None,
            landmarks: bool = False) -> Dataset:
    from fermixnet.data.cache import build_cache
    from fermixnet.data.cached import ImageTensorDataset
    from fermixnet.engine.distributed import process_rank
    from fermixnet.inference.faces import landmark_detector  # a spec's detect_landmarks=

    return ImageTensorDataset(build_cache(ds, size=(size, size), cache_dir=cache_dir,
                                          progress=process_rank() == 0,
                                          detectors=landmark_detector),
                              transform=transform, landmarks=landmarks)


def check_landmark_detectors(cfg: Config) -> None:
    """Create each `detect_landmarks=` detector of `cfg.data`'s specs once, so an unknown or
    uninstalled one fails before any cache is built (`fit` calls it first).

    Raises:
        ValueError: naming the config key, the spec and the detector.
    """
    from fermixnet.data import parse_data_spec
    from fermixnet.inference.faces import landmark_detector

    for key in ("train", "val", "test"):
        for spec in getattr(cfg.data, key):
            name = str(parse_data_spec(spec)[2].get("detect_landmarks", "")).strip()
            try:
                if name:
                    landmark_detector(name)
            except ValueError as err:
                raise ValueError(f"config key 'data.{key}': {spec!r}: detect_landmarks={name}: "
                                 f"{err}") from None


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list, list]:
    """Hold out `fraction` of each class (at least one image of classes with >= 2), seeded.

    Returns:
        `(train indices, validation indices)`, each sorted.
    """
    g = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(int(y), []).append(i)
    train, val = [], []
    for y in sorted(by_class):
        idx = by_class[y]
        order = [idx[j] for j in torch.randperm(len(idx), generator=g).tolist()]
        k = round(len(idx) * fraction)
        k = max(k, 1) if len(idx) >= 2 and fraction > 0 else k
        val += order[:k]
        train += order[k:]
    return sorted(train), sorted(val)


def balanced_downsample(labels: Sequence[int], indices: Sequence[int], seed: int) -> list[int]:
    """Keep at most as many images per class as the rarest class has (Sec. 4.2, AffectNet)."""
    from fermixnet.data.sampling import class_balanced_downsample

    keep = class_balanced_downsample([labels[i] for i in indices], seed=seed)
    return sorted(indices[int(k)] for k in keep)


def build_train_data(cfg: Config, cache_dir: Path | None, transform: Callable | None,
                     landmarks: bool = False) -> TrainSets:
    """Training (augmented) and validation (plain) datasets from `cfg.data`; with `landmarks`
    each training item also carries its (5, 2) landmarks, moved by `transform`."""
    if not cfg.data.train:
        raise ValueError("data.train is empty; pass --set data.train=<name>:/path/to/data")
    size, classes = cfg.model.input_size, cfg.classes
    train_parts, plain_parts, labels = [], [], []
    for spec in cfg.data.train:
        _, ds = _open(spec, "train", "data.train", classes)
        train_parts.append(_cached(ds, size, cache_dir, transform, landmarks))
        plain_parts.append(_cached(ds, size, cache_dir, None))
        labels += train_parts[-1].labels.tolist()  # the cache's: skip_bad may drop images
    train_all, plain_all = ConcatDataset(train_parts), ConcatDataset(plain_parts)
    if cfg.data.val:
        train_idx = list(range(len(labels)))
        val = ConcatDataset([_cached(_open(s, "val", "data.val", classes)[1], size, cache_dir, None)
                             for s in cfg.data.val])
    elif cfg.data.val_fraction > 0:
        train_idx, val_idx = stratified_split(labels, cfg.data.val_fraction, cfg.train.seed)
        if not val_idx:  # no class has two images: nothing to select checkpoints on
            raise ValueError(
                f"data.val_fraction={cfg.data.val_fraction} holds out no image of data.train "
                f"({len(labels)} images, no class with two or more); pass a validation set "
                "with --set data.val=[<name>:/path] or train on more images")
        val = Subset(plain_all, val_idx)
    else:
        train_idx, val = list(range(len(labels))), None
    if cfg.data.balance == "downsample":
        train_idx = balanced_downsample(labels, train_idx, cfg.train.seed)
    return TrainSets(
        train=Subset(train_all, train_idx),
        val=val,
        train_labels=[labels[i] for i in train_idx],
        plain=Subset(plain_all, train_idx),
    )


def stacked_tensors(subset: Subset) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, H, W) uint8 and labels (N,) int64 of a `Subset` over a `ConcatDataset` of
    cached sets (such as `TrainSets.plain`), in the subset's order (one gather per cache)."""
    parts = subset.dataset.datasets
    index = torch.as_tensor(subset.indices, dtype=torch.long)
    images = torch.cat([part.cached.tensor() for part in parts])[index]
    labels = torch.cat([torch.as_tensor(part.labels, dtype=torch.long) for part in parts])[index]
    return images, labels


def stacked_landmarks(subset: Subset, face_only: bool = True) -> torch.Tensor:
    """Landmarks (N, 5, 2) float32 of `stacked_tensors`' images, in the same order; with
    `face_only` NaN rows where they are only the framing's template (`CachedImages.landmarks`)."""
    parts = subset.dataset.datasets
    index = torch.as_tensor(subset.indices, dtype=torch.long)
    return torch.cat([part.cached.landmarks(range(len(part.cached)), face_only)
                      for part in parts])[index]


def build_test_sets(specs: Sequence[str], size: int, classes: Sequence[str],
                    cache_dir: Path | None,
                    key: str = "data.test") -> list[TestSet]:
    """Each test spec's `test` split (or `split=...` option), with its subsets, named by its
    root's folder or its `name=` option (`fermixnet.data.registry.eval_set_names`)."""
    from fermixnet.data.registry import eval_set_names

    out: list[TestSet] = []
    for spec, label in zip(specs, eval_set_names(specs), strict=True):
        _, ds = _open(spec, "test", key, classes)
        cached = _cached(ds, size, cache_dir, None)
        subsets = {k: list(v) for k, v in cached.cached.subsets.items() if v}  # cache positions
        out.append(TestSet(name=label, dataset=cached, subsets=subsets))
    return out
