"""The batched on-device data path (`data.on_device`): windows, order, sharding."""

from __future__ import annotations

import pytest
import torch

from fermixnet.data.device_loader import TensorBatchLoader, random_flip_crop


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_random_flip_crop_takes_a_window_of_the_padded_image(mode) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, 3, 10, 14), dtype=torch.uint8, generator=gen)
    pad = 2
    y = random_flip_crop(x, pad, gen, mode)
    assert y.shape == x.shape and y.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode=mode)
    flips = 0
    for i in range(len(x)):
        windows = [padded[i, :, a : a + 10, b : b + 14] for a in range(5) for b in range(5)]
        plain = any(torch.equal(w, y[i]) for w in windows)
        flipped = any(torch.equal(w.flip(-1), y[i]) for w in windows)
        assert plain or flipped, i
        flips += flipped and not plain
    assert 0 < flips < len(x)  # both outcomes occur with this seed


def test_loader_shards_one_seeded_order_across_processes() -> None:
    images = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 3, 4, 4).clone()
    labels = torch.arange(20)
    seen = []
    for rank in range(2):
        loader = TensorBatchLoader(images, labels, 4, augment=False, seed=3, rank=rank,
                                   world_size=2)
        assert len(loader) == 2
        batches = list(loader)
        for x, y in batches:
            assert torch.equal(x[:, 0, 0, 0].long(), y)  # images travel with their labels
        seen.append(torch.cat([y for _, y in batches]))
    assert not set(seen[0].tolist()) & set(seen[1].tolist())  # disjoint shards
    again = TensorBatchLoader(images, labels, 4, augment=False, seed=3, world_size=2)
    assert torch.equal(torch.cat([y for _, y in again]), seen[0])  # seeded
    with pytest.raises(ValueError, match="fewer than one batch"):
        TensorBatchLoader(images, labels, 16, world_size=2)
