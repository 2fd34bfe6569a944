"""The training steps the benchmarks time: FERMixNet co-training (Eq. 9) and a plain step.

Both follow the data path of `docs/DESIGN.md`: uint8 batches arrive on the device, float
conversion and mean/std normalisation happen there, FERMix runs there on the uint8 batch (mixing
before normalising is the same as after, and moves a quarter of the bytes), and the main and
mixed images go through the model in one forward (``torch.cat``), as the paper's co-training does
(Sec. 3.2.2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from common import MEAN, STD
from fermixnet.augment import FERMix, one_hot
from fermixnet.losses import CoTrainingLoss
from fermixnet.models import FERMixNetOutput, create_model


class Normalizer:
    """uint8 (B, 3, H, W) on any device -> float, mean/std-normalised, in the chosen layout."""

    def __init__(self, device: torch.device, channels_last: bool, dtype=torch.float32) -> None:
        self.scale = (1.0 / (255.0 * torch.tensor(STD))).view(1, 3, 1, 1).to(device, dtype)
        self.shift = (torch.tensor(MEAN) / torch.tensor(STD)).view(1, 3, 1, 1).to(device, dtype)
        self.format = torch.channels_last if channels_last else torch.contiguous_format
        self.dtype = dtype

    def __call__(self, u8: torch.Tensor) -> torch.Tensor:
        x = u8.to(self.dtype).contiguous(memory_format=self.format)
        return x.mul_(self.scale).sub_(self.shift)  # (x / 255 - mean) / std, in place


@dataclass
class Trainer:
    """A model, its optimizer and the two step functions, ready to be timed.

    Attributes:
        model: FERMixNet (`create_model("resnet18", 7, mid_branch=True)` by default).
        cotrain: ``cotrain(u8, labels)``: one FERMix co-training step on B main + B mixed images.
        plain: ``plain(u8, labels)``: one plain step (main images only, same loss code path).
    """

    model: nn.Module
    cotrain: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    plain: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def build_trainer(
    device: torch.device,
    arch: str = "resnet18",
    num_classes: int = 7,
    channels_last: bool = True,
    amp_dtype: torch.dtype | None = None,
    seed: int = 0,
    lr: float = 0.01,
) -> Trainer:
    """Model, SGD (the paper's RAF-DB recipe, Sec. 4.2) and the step functions on ``device``.

    Args:
        device: where the model, the batches and FERMix live.
        arch: trunk name for `create_model`.
        num_classes: K.
        channels_last: NHWC activations (faster convolutions on CPUs with oneDNN and on GPUs).
        amp_dtype: autocast dtype (e.g. ``torch.bfloat16``) or None for float32.
        seed: seeds the model and FERMix's generator.
        lr: SGD learning rate (0.01 rather than the recipe's 0.1 by default: random data must
            not diverge while being timed).
    """
    torch.manual_seed(seed)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = create_model(arch, num_classes=num_classes, mid_branch=True)
    model = model.to(device, memory_format=fmt)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    crit = CoTrainingLoss(alpha=0.5, beta=0.5)
    mix = FERMix()
    gen = torch.Generator().manual_seed(seed)
    norm = Normalizer(device, channels_last)

    def autocast():
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    def update(loss: torch.Tensor) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    def cotrain(u8: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        batch = u8.shape[0]
        y = one_hot(labels, num_classes)
        u8_mix, y_mix = mix.apply(u8, y, mix.sample(batch, generator=gen))  # Eqs. 4-5
        x = norm(torch.cat([u8, u8_mix]))  # (2B, 3, H, W): one forward over main + mixed
        with autocast():
            out = model(x)
            main = FERMixNetOutput(out.high[:batch], out.mid[:batch])
            mixed = FERMixNetOutput(out.high[batch:], out.mid[batch:])
            loss = crit(main, labels, mixed, y_mix).total  # Eq. 9
        return update(loss)

    def plain(u8: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with autocast():
            loss = crit(model(norm(u8)), labels).total
        return update(loss)

    return Trainer(model=model, cotrain=cotrain, plain=plain)


def random_batch(
    batch: int, size: int, device: torch.device, num_classes: int = 7, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A uint8 image batch (B, 3, size, size) and int64 labels (B,) on ``device``."""
    gen = torch.Generator().manual_seed(seed)
    u8 = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, num_classes, (batch,), generator=gen)
    return u8.to(device), labels.to(device)
