"""A batched uint8 training data path with no per-sample Python (`data.on_device: true`).

The FER training sets are small (RAF-DB: 12,271 faces; 1.8 GB as uint8 at 224 px, 0.46 GB at
112 px), so they fit on a GPU as they are. Each batch is gathered by index and augmented as a
batch (random horizontal flip and random crop of the padded image, the RAF-DB/FERPlus recipe of
Sec. 4.2) on the device that holds the data; float conversion and normalisation happen in the
training step as on the DataLoader path. This keeps a GPU busy where per-sample DataLoader workers
cannot; on a CPU it also beats them (`benchmarks/loader_bench.py`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from fermixnet.augment.landmarks import FLIP_ORDER


def flip_crop_params(
    batch: int, padding: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Random parameters of `random_flip_crop` for `batch` images, drawn on the CPU.

    Returns:
        `(flip (B,) bool, off_y (B,) int64, off_x (B,) int64)`: mirror or not, and the top-left
        corner of each crop in the padded image.
    """
    flip = torch.rand(batch, generator=generator) < 0.5
    off_y = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    off_x = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    return flip, off_y, off_x


def apply_flip_crop(
    u8: Tensor, padding: int, params: tuple[Tensor, Tensor, Tensor], mode: str = "constant"
) -> Tensor:
    """Flip and crop each image of `u8` (B, C, H, W) as `params` (`flip_crop_params`) say."""
    batch, _, height, width = u8.shape
    flip, off_y, off_x = (p.to(u8.device) for p in params)
    padded = torch.nn.functional.pad(u8, (padding,) * 4, mode=mode) if padding else u8
    # Every H x W window of the padded images as a view (B, C, nY, nX, H, W); one gather picks
    # image b's window at (off_y[b], off_x[b]): whole rows are copied, no per-pixel indices.
    windows = padded.unfold(2, height, 1).unfold(3, width, 1)
    crops = windows[torch.arange(batch, device=u8.device), :, off_y, off_x]  # (B, C, H, W)
    return torch.where(flip.view(batch, 1, 1, 1), crops.flip(-1), crops)


def move_landmarks(
    points: Tensor, width: int, padding: int, params: tuple[Tensor, Tensor, Tensor]
) -> Tensor:
    """Landmarks (B, 5, 2) after `apply_flip_crop` with the same `params`: shifted by the crop,
    then, where the image was flipped, mirrored (``x -> W - 1 - x``) with left and right swapped.
    NaN rows stay NaN."""
    flip, off_y, off_x = (p.to(points.device) for p in params)
    shift = torch.stack([padding - off_x, padding - off_y], 1).to(points.dtype)  # (B, 2)
    moved = points + shift[:, None]
    mirrored = moved[:, list(FLIP_ORDER)].clone()
    mirrored[..., 0] = (width - 1) - mirrored[..., 0]
    return torch.where(flip.view(-1, 1, 1), mirrored, moved)


def random_flip_crop(
    u8: Tensor, padding: int, generator: torch.Generator | None = None, mode: str = "constant"
) -> Tensor:
    """Per-image random horizontal flip and random ``H x W`` crop of the padded batch.

    Args:
        u8: (B, C, H, W) uint8 (any dtype works) on any device.
        padding: pixels of padding on each side before cropping back to (H, W).
        generator: CPU generator for the random draws (moved to the device as index tensors).
        mode: padding fill, ``constant`` (zeros) or ``reflect``.

    Returns:
        A new (B, C, H, W) tensor on ``u8``'s device.
    """
    return apply_flip_crop(u8, padding, flip_crop_params(u8.shape[0], padding, generator), mode)


class TensorBatchLoader:
    """Shuffled batches of a uint8 image tensor, augmented as whole batches on its device.

    Args:
        images: (N, C, H, W) or (N, H, W, C) uint8; kept where it is (move it to the GPU first to
            train there), HWC is permuted to CHW once.
        labels: (N,) int64, same device.
        batch_size: images per batch (per process); the last incomplete batch is dropped.
        padding: random-crop padding in pixels (0: no crop); flips always on when ``augment``.
        augment: apply `random_flip_crop`.
        seed: seeds the order and the augmentation (reseed ``generator`` per epoch to resume).
        padding_mode: ``constant`` or ``reflect``.
        rank, world_size: under DistributedDataParallel each process takes every
            ``world_size``-th image of the same seeded order, as `DistributedSampler` does.
        landmarks: (N, 5, 2) float landmarks (NaN rows: none), same device; when given, each
            batch is ``(images, labels, landmarks)``, the landmarks flipped and cropped with
            their images (`move_landmarks`).

    Raises:
        ValueError: shapes that do not match, or fewer images than one batch per process.
    """

    def __init__(
        self, images: Tensor, labels: Tensor, batch_size: int, padding: int = 0,
        augment: bool = True, seed: int = 0, padding_mode: str = "constant",
        rank: int = 0, world_size: int = 1, landmarks: Tensor | None = None,
    ) -> None:
        if images.ndim != 4 or labels.shape != (images.shape[0],):
            raise ValueError(
                f"expected images (N, C, H, W) and labels (N,), got {tuple(images.shape)} and "
                f"{tuple(labels.shape)}"
            )
        if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
            images = images.permute(0, 3, 1, 2).contiguous()  # HWC -> CHW once, not per batch
        if images.shape[0] // world_size < batch_size:
            raise ValueError(f"{images.shape[0]} training images are fewer than one batch of "
                             f"{batch_size} per process ({world_size} processes)")
        if landmarks is not None and landmarks.shape != (images.shape[0], 5, 2):
            raise ValueError(f"expected landmarks ({images.shape[0]}, 5, 2), got "
                             f"{tuple(landmarks.shape)}")
        self.images, self.labels, self.landmarks = images, labels, landmarks
        self.batch_size, self.padding, self.augment = batch_size, padding, augment
        self.padding_mode, self.rank, self.world_size = padding_mode, rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self.start = 0
        """Batches the next iteration skips (a mid-epoch resume): their indices and augmentation
        parameters are drawn as before, so the rest is the same, but no image is touched."""

    def __len__(self) -> int:
        return self.images.shape[0] // self.world_size // self.batch_size - self.start

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        order = torch.randperm(self.images.shape[0], generator=self.generator)
        order = order[self.rank :: self.world_size].to(self.images.device)
        for i in range(self.start + len(self)):
            params = (flip_crop_params(self.batch_size, self.padding, self.generator)
                      if self.augment else None)
            if i < self.start:
                continue
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            u8 = self.images[idx]
            if params is not None:
                u8 = apply_flip_crop(u8, self.padding, params, self.padding_mode)
            if self.landmarks is None:
                yield u8, self.labels[idx]
                continue
            points = self.landmarks[idx]
            if params is not None:
                points = move_landmarks(points, u8.shape[-1], self.padding, params)
            yield u8, self.labels[idx], points
