"""The training steps the benchmarks time: the engine's FERMix co-training step and a plain one.

Both run the code `fermixnet train` runs per batch (`fermixnet.engine.loop`): the uint8 batch goes
to the device and is normalised there (`to_model_input`), FERMix mixes it there
(`make_step_batch`, with p_mix = 1 so that every step co-trains), and `optimize_step` runs one
forward over main + mixed images (``torch.cat``, Sec. 3.2.2), the Eq. 9 loss, backward and the
SGD step. The plain step is the same code with no mixer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from common import MEAN, STD
from fermixnet.augment import FERMix
from fermixnet.engine.loop import EpochContext, StepBatch, make_step_batch, optimize_step
from fermixnet.losses import CoTrainingLoss
from fermixnet.models import create_model
from fermixnet.models.contract import to_model_input


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
    """Model, SGD (the paper's RAF-DB recipe, Sec. 4.2) and the engine's step on ``device``.

    Args:
        device: where the model, the batches and FERMix live.
        arch: trunk name for `create_model`.
        num_classes: K.
        channels_last: NHWC activations (faster convolutions with oneDNN and cuDNN).
        amp_dtype: autocast dtype (e.g. ``torch.bfloat16``) or None for float32.
        seed: seeds the model and FERMix's generator.
        lr: SGD learning rate (0.01 rather than the recipe's 0.1 by default: random data must
            not diverge while being timed).
    """
    torch.manual_seed(seed)
    model = create_model(arch, num_classes=num_classes, mid_branch=True).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    mix_ctx = EpochContext(
        criterion=CoTrainingLoss(alpha=0.5, beta=0.5), optimizer=opt, device=device,
        mean=torch.tensor(MEAN, device=device).view(1, 3, 1, 1),
        std=torch.tensor(STD, device=device).view(1, 3, 1, 1),
        num_classes=num_classes, mixer=FERMix(), p_mix=1.0,
        generator=torch.Generator().manual_seed(seed), amp_dtype=amp_dtype,
        channels_last=channels_last,
    )
    plain_ctx = replace(mix_ctx, mixer=None, p_mix=0.0)

    def to_input(u8: torch.Tensor) -> torch.Tensor:
        return to_model_input(u8, device, mix_ctx.mean, mix_ctx.std, channels_last)

    def cotrain(u8: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        batch = make_step_batch(to_input(u8), labels, mix_ctx)  # FERMix, Eqs. 4-5
        return optimize_step(model, batch, mix_ctx)[0].total.detach()  # Eq. 9

    def plain(u8: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return optimize_step(model, StepBatch(to_input(u8), labels), plain_ctx)[0].total.detach()

    return Trainer(model=model, cotrain=cotrain, plain=plain)


def random_batch(
    batch: int, size: int, device: torch.device, num_classes: int = 7, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A uint8 image batch (B, 3, size, size) and int64 labels (B,) on ``device``."""
    gen = torch.Generator().manual_seed(seed)
    u8 = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, num_classes, (batch,), generator=gen)
    return u8.to(device), labels.to(device)
