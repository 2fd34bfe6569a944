"""How long `fermixnet compare` will take, said before it starts: images x epochs at a speed
measured on the data's first images with the run's own model, recipe, device and precision.

A few optimisation steps of each model are timed on one batch (the median of three, after one
warm-up step): without a mixed batch and, for a recipe that mixes, with one, weighted by
`mix.p_mix` (Sec. 3.2.2: a co-training step forwards the main and the mixed batch). Evaluation
forwards give the speed of validation (every epoch) and of the test sets (once with the last, once
with the best weights). On a machine shared with other jobs the estimate is as steady as the load.
Decoding the images into the cache (once per data set and size) is not counted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from fermixnet.config import Config

__all__ = ["RunCost", "Speed", "format_estimate", "format_seconds", "measure_speed", "run_cost"]


@dataclass(frozen=True)
class Speed:
    """Measured images per second of one model's recipe on this machine."""

    train: float
    """Main images/s of a training step at the recipe's p_mix."""
    eval: float
    """Images/s of an evaluation forward."""


@dataclass(frozen=True)
class RunCost:
    """What one training run still has to do, and how long that takes at `speed`."""

    label: str
    train_images: int
    """Training images still to go (images per epoch x remaining epochs)."""
    eval_images: int
    """Validation images of the remaining epochs plus the test images (twice)."""
    speed: Speed

    @property
    def seconds(self) -> float:
        return self.train_images / self.speed.train + self.eval_images / self.speed.eval


def _timed(fn, steps: int, device: torch.device) -> float:
    """Median seconds per call of `fn` over `steps` calls, after one warm-up call (the median
    shrugs off a burst of other work on a shared machine)."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_speed(cfg: Config, images: torch.Tensor, steps: int = 3) -> Speed:
    """Time training steps and one evaluation forward of `cfg`'s model on `images`.

    Args:
        cfg: the run's config (model, mixing, optimiser, device, precision, threads).
        images: (B, 3, H, W) uint8 at the model's input size: the data's first batch.
        steps: timed steps per kind (after one warm-up step each).
    """
    from fermixnet.augment import build_mixer, one_hot
    from fermixnet.engine.distributed import DistInfo, resolve_device
    from fermixnet.engine.loop import EpochContext, StepBatch, optimize_step
    from fermixnet.engine.optim import build_optimizer
    from fermixnet.engine.preemption import StopRequest
    from fermixnet.engine.runtime import Runtime
    from fermixnet.losses import CoTrainingLoss
    from fermixnet.models import create_model
    from fermixnet.models.contract import to_model_input

    if cfg.train.cpu_threads is not None:
        torch.set_num_threads(cfg.train.cpu_threads)
    device = resolve_device(cfg.train.device)
    rt = Runtime.create(cfg, Path("."), DistInfo(), device, StopRequest())  # never installed
    model = create_model(cfg.model.name, num_classes=cfg.model.num_classes,
                         mid_branch=cfg.model.mid_branch).to(device)
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last)
    mean = torch.tensor(cfg.data.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.data.std, device=device).view(1, 3, 1, 1)
    x = to_model_input(images, device, mean, std, rt.channels_last)  # (B, 3, H, W)
    y = torch.arange(x.shape[0], device=device) % cfg.model.num_classes
    mixer = build_mixer(cfg.mix)
    ctx = EpochContext(criterion=CoTrainingLoss(cfg.loss.alpha, cfg.loss.beta), device=device,
                       optimizer=build_optimizer(cfg.optim, model), mean=mean, std=std,
                       num_classes=cfg.model.num_classes, amp_dtype=rt.amp_dtype,
                       scaler=rt.scaler, channels_last=rt.channels_last)
    model.train()
    step = _timed(lambda: optimize_step(model, StepBatch(x, y), ctx), steps, device)
    if mixer is not None and cfg.mix.p_mix > 0:
        params = mixer.sample(x.shape[0], generator=torch.Generator().manual_seed(0))
        x_mix, y_mix = mixer.apply(x, one_hot(y, cfg.model.num_classes), params)
        mixed = _timed(lambda: optimize_step(model, StepBatch(x, y, x_mix, y_mix), ctx),
                       steps, device)
        step = (1 - cfg.mix.p_mix) * step + cfg.mix.p_mix * mixed
    model.eval()
    with torch.no_grad():
        forward = _timed(lambda: model(x), steps, device)
    return Speed(train=x.shape[0] / step, eval=x.shape[0] / forward)


def run_cost(label: str, cfg: Config, counts: tuple[int, int, int], epochs_done: int,
             speed: Speed) -> RunCost:
    """The remaining work of one run: `counts` = (train, val, test) images (test: every copy)."""
    n_train, n_val, n_test = counts
    per_epoch = n_train
    if cfg.train.max_steps_per_epoch is not None:
        per_epoch = min(n_train, cfg.train.max_steps_per_epoch * cfg.train.batch_size)
    left = max(cfg.train.epochs - epochs_done, 0)
    return RunCost(label, per_epoch * left, n_val * left + 2 * n_test, speed)


def format_seconds(seconds: float) -> str:
    """`42 s`, `7 min`, `3 h 05 min`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def format_estimate(costs: Sequence[RunCost], device: str, reused: int = 0) -> str:
    """The line(s) printed before training: per run images x epochs at its speed, and the total."""
    lines = [f"estimate: {len(costs)} run(s) to train"
             + (f" ({reused} finished run(s) reused)" if reused else "")
             + f", speeds measured just now on {device}:"]
    for c in costs:
        lines.append(f"  {c.label}: {c.train_images:,} training images at {c.speed.train:.1f} "
                     f"img/s + {c.eval_images:,} evaluated at {c.speed.eval:.0f} img/s = "
                     f"{format_seconds(c.seconds)}")
    total = sum(c.seconds for c in costs)
    lines.append(f"estimate: about {format_seconds(total)} in all (not counting decoding the "
                 "images once into the cache)")
    return "\n".join(lines)
