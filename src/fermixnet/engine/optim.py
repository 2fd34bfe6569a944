"""Optimisers and learning-rate schedules of the recipes (Sec. 4.2, Sec. 4.7)."""

from __future__ import annotations

import math

import torch

from fermixnet.config import OPTIMIZERS, OptimConfig, SchedConfig
from fermixnet.engine.sam import SAM


def build_optimizer(cfg: OptimConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD (RAF-DB, FERPlus), Adam (AffectNet) or AdamW; wrapped in `SAM` when `cfg.sam`."""
    cls: type[torch.optim.Optimizer] = getattr(torch.optim, OPTIMIZERS[cfg.name])
    kwargs: dict = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if cfg.name == "sgd":
        kwargs["momentum"] = cfg.momentum
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.sam:
        return SAM(params, cls, rho=cfg.sam_rho, **kwargs)
    return cls(params, **kwargs)


def build_scheduler(
    cfg: SchedConfig, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning-rate schedule, stepped after every optimiser step (timm-style).

    `step` (x gamma every `step_size` epochs; lr / 10 every 10 epochs on RAF-DB and FERPlus,
    Sec. 4.2) and `exp` (x gamma each epoch; x 0.8 on AffectNet) change the rate at epoch
    boundaries, as in the paper; `cosine` decays it smoothly over all steps; `none` keeps it.
    `warmup_epochs` (may be fractional) ramps it up linearly first; the paper uses none.
    """
    optimizer = getattr(optimizer, "base_optimizer", optimizer)  # SAM shares its param groups
    total = max(1, epochs * steps_per_epoch)
    warmup = round(cfg.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        epoch = step // steps_per_epoch
        if cfg.name == "step":
            return cfg.gamma ** (epoch // cfg.step_size)
        if cfg.name == "exp":
            return cfg.gamma**epoch
        if cfg.name == "cosine":
            t = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1.0 + math.cos(math.pi * t))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
