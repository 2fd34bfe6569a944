"""A batched uint8 data path with no per-sample Python: the whole set as one uint8 tensor.

The training images are small (RAF-DB: 12,271 faces; at 224 px that is 1.8 GB as uint8, at 112 px
0.46 GB), so they fit on a GPU as they are, or in RAM on a CPU. Each batch is gathered by index and
augmented as a batch (random horizontal flip and random crop with zero padding, the RAF-DB recipe
of Sec. 4.2) on the device that holds the data; float conversion and normalisation are left to the
training step as everywhere else. This is what keeps a GPU busy where per-sample DataLoader
workers cannot.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


def random_flip_crop(
    u8: Tensor, padding: int, generator: torch.Generator | None = None
) -> Tensor:
    """Per-image random horizontal flip and random ``H x W`` crop of the zero-padded batch.

    Args:
        u8: (B, C, H, W) uint8 (any dtype works) on any device.
        padding: pixels of zero padding on each side before cropping back to (H, W).
        generator: CPU generator for the random draws (moved to the device as index tensors).

    Returns:
        A new (B, C, H, W) tensor on ``u8``'s device.
    """
    batch, _, height, width = u8.shape
    flip = torch.rand(batch, generator=generator) < 0.5
    off_y = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(u8.device)
    off_x = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(u8.device)
    padded = torch.nn.functional.pad(u8, (padding, padding, padding, padding))
    # Every H x W window of the padded images as a view (B, C, nY, nX, H, W); one gather picks
    # image b's window at (off_y[b], off_x[b]): whole rows are copied, no per-pixel indices.
    windows = padded.unfold(2, height, 1).unfold(3, width, 1)
    crops = windows[torch.arange(batch, device=u8.device), :, off_y, off_x]  # (B, C, H, W)
    return torch.where(flip.to(u8.device).view(batch, 1, 1, 1), crops.flip(-1), crops)


class TensorBatchLoader:
    """Shuffled batches of a uint8 image tensor, augmented as whole batches on its device.

    Args:
        images: (N, C, H, W) or (N, H, W, C) uint8; kept as given (move it to the GPU first to
            train there), HWC is permuted to CHW once.
        labels: (N,) int64, same device.
        batch_size: images per batch; the last incomplete batch is dropped (as in training).
        padding: random-crop padding in pixels (0: no crop); flips always on when ``augment``.
        augment: apply `random_flip_crop`.
        seed: seeds the order and the augmentation.
    """

    def __init__(
        self, images: Tensor, labels: Tensor, batch_size: int, padding: int = 0,
        augment: bool = True, seed: int = 0,
    ) -> None:
        if images.ndim != 4 or labels.shape != (images.shape[0],):
            raise ValueError(
                f"expected images (N, C, H, W) and labels (N,), got {tuple(images.shape)} and "
                f"{tuple(labels.shape)}"
            )
        if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
            images = images.permute(0, 3, 1, 2).contiguous()  # HWC -> CHW once, not per batch
        self.images, self.labels = images, labels
        self.batch_size, self.padding, self.augment = batch_size, padding, augment
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.images.shape[0] // self.batch_size

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.randperm(self.images.shape[0], generator=self.generator)
        order = order.to(self.images.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            u8 = self.images[idx]
            if self.augment:
                u8 = random_flip_crop(u8, self.padding, self.generator)
            yield u8, self.labels[idx]
