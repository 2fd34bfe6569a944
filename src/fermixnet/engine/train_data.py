"""`TrainingData`: the one owner of a run's data (the shape of Lightning's `DataModule`, without
Lightning).

It builds the training, validation and test sets from `cfg.data` (rank 0 first, so the other
processes reuse its caches), chooses the training batch path (DataLoader workers, or
`data.on_device`'s batched uint8 path), owns the sampler and every random stream of the data, and
reseeds them all in `set_epoch`. The trainer asks it for batches; it knows nothing of samplers,
caches or generators.

Each epoch's streams are seeded from `(train.seed, epoch)` alone, so `resume` after a kill
reproduces the uninterrupted run. A checkpoint written mid-epoch (preemption) also keeps
`rng_state()`, and the resumed epoch asks for `train_batches(start_step=k)`: the first k batches'
indices (and on-device augmentation parameters) are drawn again but no image is decoded.

======  ==============================================================================
stream  what it drives
======  ==============================================================================
0       torch's global generator (the per-sample transforms of `data.workers: 0`)
1       the DataLoader's order and its workers' seeds, or the on-device order and crops
2       `mix_generator`: the p_mix draws and FERMix's parameters in the training step
3       the class-balanced sampler (`data.balance: sampler`)
4       `aug.occluders`: each training sample's occluder (`fermixnet.synth.occluder_aug`)
======  ==============================================================================
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sized
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    Sampler,
)

from fermixnet.config import Config
from fermixnet.engine.datasets import TestSet, TrainSets, build_test_sets, build_train_data
from fermixnet.engine.distributed import DistInfo, barrier
from fermixnet.engine.evaluate import shard_loader

__all__ = ["TrainingData", "epoch_seed"]

Batch = tuple[torch.Tensor, ...]
"""(B, 3, H, W) uint8 images and (B,) int64 labels; for a mixer that places its regions by
landmarks (`uses_landmarks`) also (B, 5, 2) float32 landmarks in the images' pixels (NaN rows:
none), flipped and cropped with their images."""


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """The seed of random `stream` (see the module docstring) in `epoch` of a run seeded `seed`."""
    return (seed * 1_000_003 + epoch * 7_919 + stream) % (2**63)


class _Capped(Sized, Iterable[Batch]):
    """The first `steps` batches of a loader (`train.max_steps_per_epoch`)."""

    def __init__(self, loader: Iterable[Batch], steps: int) -> None:
        self.loader, self.steps = loader, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Batch]:
        return itertools.islice(self.loader, self.steps)


class _SkipFirst(Sampler[list[int]]):
    """A batch sampler whose next pass leaves out its first `start` batches (drawn, not used)."""

    def __init__(self, batches: BatchSampler) -> None:
        self.batches, self.start = batches, 0

    def __len__(self) -> int:
        return len(self.batches) - self.start

    def __iter__(self) -> Iterator[list[int]]:
        # A generator, so nothing is drawn before the first batch is asked for: the DataLoader
        # draws its workers' base seed from the same generator first, as without skipping.
        it = iter(self.batches)
        for _ in itertools.islice(it, self.start):
            pass
        yield from it


class TrainingData:
    """The data sets, loaders, sampler and per-epoch random state of one training run.

    Args:
        cfg: the validated config (`data.*`, `aug.*`, `train.batch_size`, `train.seed`).
        dist: this process's place in the job (each process gets its share of every batch).
        device: the training device (`data.on_device` keeps the training images there).

    Raises:
        ValueError: bad data specs, a batch size the processes cannot share, or options the
            chosen batch path does not support.
        FileNotFoundError: a data root is missing.
    """

    def __init__(self, cfg: Config, dist: DistInfo, device: torch.device) -> None:
        if cfg.train.batch_size % dist.world_size:
            raise ValueError(f"train.batch_size={cfg.train.batch_size} is not divisible by the "
                             f"{dist.world_size} processes")
        self.cfg, self.dist, self.device = cfg, dist, device
        self.landmarks = uses_landmarks(cfg)
        """Batches carry landmarks (the configured mixer reads them)."""
        self.sets, self.test_sets = _build_sets(cfg, dist, self.landmarks)
        self._occluded = _with_occluders(cfg, self.sets, self.landmarks)
        self.mix_generator = torch.Generator()
        """Random stream of the training step's batch mixing (p_mix draws, FERMix parameters)."""
        self._sampler: Sampler | None = None
        self._generator = torch.Generator()
        self._skip: _SkipFirst | Any = None  # has `.start`: batches the next pass leaves out
        self._loader: Iterable[Batch] = (self._device_loader() if cfg.data.on_device
                                         else self._worker_loader())
        cap = cfg.train.max_steps_per_epoch
        self.steps_per_epoch = len(self._loader) if cap is None else min(len(self._loader), cap)
        """Optimisation steps in one epoch (the per-step schedules are built from it)."""

    @property
    def val(self) -> Dataset | None:
        """The validation set (plain images), or None without validation."""
        return self.sets.val

    def set_epoch(self, epoch: int) -> None:
        """Reseed every random stream of the data for `epoch` (0-based); call before each epoch."""
        seed = self.cfg.train.seed
        torch.manual_seed(epoch_seed(seed, epoch, 0))  # workers=0 transforms
        self._generator.manual_seed(epoch_seed(seed, epoch, 1))
        self.mix_generator.manual_seed(epoch_seed(seed, epoch, 2))
        if self._occluded is not None:
            self._occluded.set_seed(epoch_seed(seed, epoch, 4))
        if isinstance(self._sampler, DistributedSampler):
            self._sampler.set_epoch(epoch)
        elif self._sampler is not None:  # class-balanced draws, also seeded per epoch
            self._sampler.generator.manual_seed(epoch_seed(seed, epoch, 3))

    def train_batches(self, start_step: int = 0) -> _Capped:
        """This epoch's training batches (`steps_per_epoch` of them; `len()` works), from batch
        `start_step` on (a mid-epoch resume; the skipped batches' images are not decoded).

        With `data.workers > 0` a resumed epoch has the same batches but other per-sample
        augmentation draws (each worker's generator advances with the batches it decodes).
        """
        if not 0 <= start_step <= self.steps_per_epoch:
            raise ValueError(f"start_step={start_step} is outside the epoch's "
                             f"{self.steps_per_epoch} steps")
        self._skip.start = start_step
        return _Capped(self._loader, self.steps_per_epoch - start_step)

    def rng_state(self) -> dict[str, torch.Tensor]:
        """What a mid-epoch checkpoint keeps of the random streams that skipping batches cannot
        redraw: `mix_generator`, torch's global generator (stream 0) and this CUDA device's."""
        state = {"mix": self.mix_generator.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None:
        """Put back `rng_state()` (after `set_epoch`, before the epoch's first batch)."""
        self.mix_generator.set_state(state["mix"])
        torch.set_rng_state(state["torch"])
        if "cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)

    def eval_loader(self, dataset: Dataset) -> DataLoader:
        """This process's shard of `dataset` in `eval.batch_size` batches, yielding indices too."""
        return shard_loader(dataset, self.cfg.eval.batch_size, self.cfg.data.workers,
                            self.dist.rank, self.dist.world_size)

    def preview_batch(self, count: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Up to `count` unaugmented training images spread over the (class-sorted) set.

        Returns:
            `(images, landmarks)`: (N, 3, H, W) uint8, and for a mixer that places its regions
            by landmarks (`self.landmarks`) their (N, 5, 2) float32 points in the images' pixels
            (NaN rows: only the framing's template), else None.
        """
        from fermixnet.engine.datasets import stacked_landmarks

        plain = self.sets.plain
        picks = torch.linspace(0, len(plain) - 1, min(count, len(plain))).round().long().tolist()
        images = torch.stack([plain[i][0] for i in picks])
        return images, (stacked_landmarks(plain)[picks] if self.landmarks else None)

    def _per_process(self) -> int:
        return self.cfg.train.batch_size // self.dist.world_size

    def _worker_loader(self) -> DataLoader:
        cfg, dist, train = self.cfg, self.dist, self.sets.train
        if cfg.data.balance == "sampler":
            if dist.enabled:
                raise ValueError("data.balance=sampler works in one process; under torchrun use "
                                 "--set data.balance=downsample")
            from fermixnet.data.sampling import balanced_sampler

            self._sampler = balanced_sampler(self.sets.train_labels, seed=cfg.train.seed)
        elif dist.enabled:
            self._sampler = DistributedSampler(train, num_replicas=dist.world_size, rank=dist.rank,
                                               shuffle=True, seed=cfg.train.seed, drop_last=True)
        per_proc = self._per_process()
        drop_last = len(train) // dist.world_size >= per_proc  # BN needs > 1 image per batch
        # What `DataLoader(shuffle=..., sampler=...)` builds, with a batch sampler that can skip.
        sampler = (self._sampler if self._sampler is not None
                   else RandomSampler(train, generator=self._generator))
        self._skip = _SkipFirst(BatchSampler(sampler, per_proc, drop_last))
        return DataLoader(train, batch_sampler=self._skip, num_workers=cfg.data.workers,
                          generator=self._generator, pin_memory=self.device.type == "cuda")

    def _device_loader(self) -> Iterable[Batch]:
        """`data.on_device`: the training set as one uint8 tensor on the device, batch-augmented."""
        from fermixnet.data.device_loader import TensorBatchLoader
        from fermixnet.engine.datasets import stacked_landmarks, stacked_tensors

        cfg, a = self.cfg, self.cfg.aug  # Config checked the preset and the balance
        images, labels = stacked_tensors(self.sets.plain)
        marks = stacked_landmarks(self.sets.plain).to(self.device) if self.landmarks else None
        loader = TensorBatchLoader(
            images.to(self.device), labels.to(self.device), self._per_process(),
            padding=round(cfg.model.input_size * a.crop_padding) if a.preset == "flip_crop" else 0,
            augment=a.preset == "flip_crop", seed=cfg.train.seed,
            padding_mode=a.crop_padding_mode, rank=self.dist.rank,
            world_size=self.dist.world_size, landmarks=marks)
        self._generator, self._skip = loader.generator, loader
        return loader


def uses_landmarks(cfg: Config) -> bool:
    """Whether `cfg.mix.method`'s mixer places its regions by landmarks (`uses_landmarks`)."""
    from fermixnet.augment import MIXERS

    return bool(getattr(MIXERS.get(cfg.mix.method), "uses_landmarks", False))


def _transform(cfg: Config) -> Any:
    from fermixnet.augment.transforms import build_transform

    a = cfg.aug
    return build_transform(a.preset, cfg.model.input_size, crop_padding=a.crop_padding,
                           crop_padding_mode=a.crop_padding_mode,
                           affine_translate=a.affine_translate, affine_scale=a.affine_scale)


def _with_occluders(cfg: Config, sets: TrainSets, landmarks: bool) -> Any:
    """`aug.occluders.p > 0`: replace `sets.train` by its plain images with occluders drawn by
    their cached landmarks, then the recipe's transform; returns that set (None when off). With
    `landmarks` (a mixer that places regions by them) its items carry the cached landmarks too,
    moved by the transform as in the set it replaces."""
    occ = cfg.aug.occluders
    if occ.p <= 0:
        return None
    if cfg.data.on_device:
        raise ValueError("aug.occluders draws on the CPU, per sample: it needs data.on_device="
                         "false (use --set data.on_device=false or aug.occluders.p=0)")
    from fermixnet.engine.datasets import stacked_landmarks
    from fermixnet.synth.occluder_aug import OccludedTrainSet

    points = stacked_landmarks(sets.plain, face_only=False)  # template rows too
    exact = torch.isfinite(stacked_landmarks(sets.plain)).all(dim=2).all(dim=1)  # own points
    sets.train = OccludedTrainSet(sets.plain, points, exact, occ.p, occ.families,
                                  _transform(cfg), carry_landmarks=landmarks)
    return sets.train


def _build_sets(cfg: Config, dist: DistInfo, landmarks: bool = False
                ) -> tuple[TrainSets, list[TestSet]]:
    """Build caches on rank 0 first so the other processes reuse them."""
    transform = _transform(cfg)
    cache = Path(cfg.data.cache_dir) if cfg.data.cache_dir else None  # data default
    result = None
    for turn in (True, False):
        if dist.is_main == turn:
            result = (build_train_data(cfg, cache, transform, landmarks),
                      build_test_sets(cfg.data.test, cfg.model.input_size, cfg.classes, cache))
        barrier()
    assert result is not None
    return result
