"""Optimisers and learning-rate schedules of the recipes (Sec. 4.2, Sec. 4.7)."""

from __future__ import annotations

import torch

from fermixnet.config import OptimConfig, SchedConfig
from fermixnet.engine.sam import SAM

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


def build_optimizer(cfg: OptimConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD (RAF-DB, FERPlus), Adam (AffectNet) or AdamW; wrapped in `SAM` when `cfg.sam`."""
    cls = _OPTIMIZERS[cfg.name]
    kwargs: dict = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if cfg.name == "sgd":
        kwargs["momentum"] = cfg.momentum
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.sam:
        return SAM(params, cls, rho=cfg.sam_rho, **kwargs)
    return cls(params, **kwargs)


def build_scheduler(
    cfg: SchedConfig, optimizer: torch.optim.Optimizer, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule: `step` (lr / 10 every 10 epochs), `exp` (x 0.8 each epoch), `cosine`,
    or `none` (constant)."""
    sched = torch.optim.lr_scheduler
    # SAM shares its param groups with the base optimiser, whose step() the scheduler must see.
    optimizer = getattr(optimizer, "base_optimizer", optimizer)
    if cfg.name == "step":
        return sched.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.name == "exp":
        return sched.ExponentialLR(optimizer, gamma=cfg.gamma)
    if cfg.name == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=epochs)
    return sched.LambdaLR(optimizer, lambda _epoch: 1.0)
