"""One training epoch (DeiT-style engine): p_mix gating, one forward over main + mixed batch,
the Eq. 9 loss, mixed precision, SAM, progress bar, NaN checks, and stopping at a step boundary
(preemption) with what a mid-epoch checkpoint needs to finish the epoch as if uninterrupted."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from fermixnet.augment import one_hot
from fermixnet.engine.distributed import all_reduce_sum
from fermixnet.engine.sam import SAM
from fermixnet.models.contract import to_model_input
from fermixnet.progress import progress_bar


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last checkpoint on disk is the last good one."""


@dataclass
class StepBatch:
    """Inputs of one step: the main batch, and the mixed batch when `r < p_mix`."""

    x: torch.Tensor  # (B, 3, H, W) normalised
    y: torch.Tensor  # (B,) class indices
    x_mix: torch.Tensor | None = None  # (B, 3, H, W)
    y_mix: torch.Tensor | None = None  # (B, K) probabilities (Eq. 5)


@dataclass
class StepInfo:
    """What a per-step hook sees (tests use it to simulate kills and divergence)."""

    epoch: int
    step: int
    global_step: int
    loss: torch.Tensor
    model: torch.nn.Module


@dataclass
class EpochContext:
    """Everything `train_one_epoch` needs besides the model and the data."""

    criterion: torch.nn.Module
    """The Eq. 9 loss; its `mode` (cotrain or alternate, from `mix.cotrain`) also decides
    whether the mixed batch trains with the main batch or alone."""
    optimizer: torch.optim.Optimizer
    device: torch.device
    mean: torch.Tensor  # (1, 3, 1, 1) on device
    std: torch.Tensor
    num_classes: int
    mixer: Any = None
    p_mix: float = 0.0
    generator: torch.Generator | None = None  # p_mix draws and mixing parameters
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    channels_last: bool = False
    grad_clip: float | None = None
    log_every: int = 20
    world_size: int = 1
    show_progress: bool = False  # a bar on a terminal, else lines at an interval
    hook: Callable[[StepInfo], None] | None = None
    """Called after every optimisation step: the place for per-step extensions (tests simulate
    kills and divergence here; a progress logger or a stop-at-step-boundary check belongs here)."""
    log: Callable[[int, dict[str, float]], None] | None = None  # (global_step, scalars)
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None  # stepped after every step
    stop: Callable[[], bool] | None = None
    """Asked at each step boundary (after the optimiser and scheduler steps and the hook) but the
    epoch's last: True ends the epoch there (`EpochStopped`). Under DDP every process must give
    the same answer (the trainer all-reduces the flag)."""


@dataclass
class EpochProgress:
    """Where an epoch stands at a step boundary: what a mid-epoch checkpoint keeps so that the
    resumed epoch logs the same metrics as an uninterrupted one."""

    step: int = 0
    """Optimisation steps done in the epoch."""
    sums: list[float] = dataclasses.field(default_factory=lambda: [0.0] * 4)
    """Running sums: loss, correct main predictions, main images, steps (of all processes when
    saved; of this process while training)."""
    lr: float = float("nan")
    """The learning rate of the last step done."""


class EpochStopped(Exception):
    """`EpochContext.stop` said stop: the epoch ended at `progress.step`."""

    def __init__(self, progress: EpochProgress) -> None:
        super().__init__(f"stopped after step {progress.step}")
        self.progress = progress


def split_output(out: Any, sl: slice) -> Any:
    """Slice every tensor of a model output (`FERMixNetOutput` is a NamedTuple; dataclasses
    work too), keeping its type so `.logits` still fuses the heads."""
    if hasattr(out, "_fields"):
        return type(out)(*(v[sl] if isinstance(v, torch.Tensor) else v for v in out))
    values = {}
    for f in dataclasses.fields(out):
        if f.init:
            v = getattr(out, f.name)
            values[f.name] = v[sl] if isinstance(v, torch.Tensor) else v
    return type(out)(**values)


def make_step_batch(x: torch.Tensor, y: torch.Tensor, ctx: EpochContext,
                    landmarks: torch.Tensor | None = None) -> StepBatch:
    """Draw r ~ U(0, 1); if r < p_mix build the mixed batch on the device (Sec. 3.2.2). A mixer
    with `uses_landmarks` gets the batch's landmarks (B, 5, 2)."""
    batch = StepBatch(x=x, y=y)
    if ctx.mixer is None or ctx.p_mix <= 0:
        return batch
    r = float(torch.rand((), generator=ctx.generator))
    if r < ctx.p_mix:
        params = ctx.mixer.sample(x.shape[0], generator=ctx.generator)
        extra = ({"landmarks": None if landmarks is None else landmarks.to(x.device)}
                 if getattr(ctx.mixer, "uses_landmarks", False) else {})
        batch.x_mix, batch.y_mix = ctx.mixer.apply(x, one_hot(y, ctx.num_classes), params,
                                                   **extra)
    return batch


def forward_loss(model: torch.nn.Module, b: StepBatch, criterion: torch.nn.Module):
    """Eq. 9 for one step; with co-training ONE forward runs over `cat([x, x_mix])`, with
    `criterion.mode == "alternate"` (Fig. 5's alternative) the mixed batch trains alone.

    Returns:
        `(LossOutput, main output or None)`.
    """
    if b.x_mix is None:
        main = model(b.x)
        return criterion(main, b.y), main
    if getattr(criterion, "mode", "cotrain") == "alternate":  # the mixed batch alone
        return criterion(None, None, model(b.x_mix), b.y_mix), None
    n = b.x.shape[0]
    both = torch.cat([b.x, b.x_mix])  # (2B, 3, H, W)
    if b.x.is_contiguous(memory_format=torch.channels_last) and not b.x.is_contiguous():
        both = both.contiguous(memory_format=torch.channels_last)
    out = model(both)
    main, mixed = split_output(out, slice(0, n)), split_output(out, slice(n, None))
    return criterion(main, b.y, mixed, b.y_mix), main


def _autocast(ctx: EpochContext):
    if ctx.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(ctx.device.type, dtype=ctx.amp_dtype)


def optimize_step(model: torch.nn.Module, b: StepBatch, ctx: EpochContext):
    """Forward, backward and optimiser step (two passes under SAM); returns the loss output."""
    opt = ctx.optimizer
    opt.zero_grad(set_to_none=True)
    with _autocast(ctx):
        res, main = forward_loss(model, b, ctx.criterion)
    if ctx.scaler is not None:  # fp16 only
        ctx.scaler.scale(res.total).backward()
        ctx.scaler.unscale_(opt)
        if ctx.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), ctx.grad_clip)
        ctx.scaler.step(opt)
        ctx.scaler.update()
        return res, main
    res.total.backward()
    if ctx.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), ctx.grad_clip)
    if isinstance(opt, SAM):
        opt.first_step(zero_grad=True)
        with _autocast(ctx):
            forward_loss(model, b, ctx.criterion)[0].total.backward()
        opt.second_step(zero_grad=True)
    else:
        opt.step()
    return res, main


def train_one_epoch(
    model: torch.nn.Module, loader: Iterable, ctx: EpochContext, epoch: int, global_step: int,
    start: EpochProgress | None = None,
) -> dict[str, float]:
    """Train one epoch over every batch of `loader` (`TrainingData.train_batches()` in `fit`);
    returns mean loss, train accuracy (main images), images/s, steps and `lr`, the learning rate
    of the epoch's last step (per-step schedules change it within the epoch).

    Args:
        model, loader, ctx: what to train, on what, how.
        epoch: 0-based epoch.
        global_step: optimisation steps before this epoch.
        start: the progress of a resumed epoch; `loader` then yields its remaining batches.

    Raises:
        TrainingDivergedError: the loss became NaN/inf (checked every `log_every` steps).
        EpochStopped: `ctx.stop` asked to stop; carries the progress to checkpoint.
    """
    model.train()
    start = start or EpochProgress()
    # loss sum, correct, seen, steps
    stats = torch.tensor(start.sums, dtype=torch.float64, device=ctx.device)
    images, t0 = 0, time.perf_counter()
    total = start.step + len(loader)
    bar = progress_bar(loader, total=total, desc=f"epoch {epoch + 1}",
                       disable=not ctx.show_progress, leave=False, dynamic_ncols=True)
    bar.n = start.step  # a resumed epoch counts on (tqdm and LogProgress alike)
    step, lr = start.step, start.lr
    for step, (x, y, *marks) in enumerate(bar, start=start.step + 1):
        x = to_model_input(x, ctx.device, ctx.mean, ctx.std, ctx.channels_last)
        y = y.to(ctx.device, non_blocking=True)
        b = make_step_batch(x, y, ctx, marks[0] if marks else None)
        lr = ctx.optimizer.param_groups[0]["lr"]  # the rate this step uses
        res, main = optimize_step(model, b, ctx)
        if ctx.scheduler is not None:
            ctx.scheduler.step()
        stats[0] += res.total.detach().double()
        stats[3] += 1
        if main is not None:
            stats[1] += (main.logits.detach().argmax(1) == y).sum()
            stats[2] += y.numel()
        images += y.numel()
        if ctx.hook is not None:
            ctx.hook(StepInfo(epoch, step, global_step + step, res.total.detach(), model))
        if step % ctx.log_every == 0 or step == total:
            _check_and_log(stats, ctx, epoch, step, global_step + step, bar, images, t0, res)
        if ctx.stop is not None and step < total and ctx.stop():
            bar.close()  # the sums of all processes (a resumed epoch gives them to rank 0)
            raise EpochStopped(EpochProgress(step, all_reduce_sum(stats.clone()).tolist(), lr))
    bar.close()
    stats = all_reduce_sum(stats.clone())
    _raise_if_diverged(float(stats[0]), epoch, step)
    elapsed = max(time.perf_counter() - t0, 1e-9)
    return {
        "train_loss": float(stats[0] / stats[3].clamp(min=1)),
        "train_acc": float(stats[1] / stats[2]) if stats[2] > 0 else float("nan"),
        "images_per_s": images * ctx.world_size / elapsed,
        "steps": step,
        "lr": lr,
    }


def _raise_if_diverged(loss_sum: float, epoch: int, step: int) -> None:
    if not math.isfinite(loss_sum):
        raise TrainingDivergedError(
            f"loss became {loss_sum} in epoch {epoch + 1} by step {step}; training stopped"
        )


def _check_and_log(stats, ctx, epoch, step, global_step, bar, images, t0, res) -> None:
    # The running sum stays NaN once a NaN entered it, so checking here catches every step.
    loss_sum = float(all_reduce_sum(stats[:1].clone())) / ctx.world_size
    _raise_if_diverged(loss_sum, epoch, step)
    ips = images * ctx.world_size / max(time.perf_counter() - t0, 1e-9)
    loss = float(stats[0] / stats[3])
    acc = float(stats[1] / stats[2]) if stats[2] > 0 else float("nan")
    bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}", img_s=f"{ips:.0f}")
    if ctx.log is not None:
        scalars = {"train/loss": loss, "train/acc": acc, "train/images_per_s": ips,
                   "train/lr": ctx.optimizer.param_groups[0]["lr"]}
        scalars.update({f"train/loss_{k}": float(v.detach()) for k, v in res.terms.items()})
        ctx.log(global_step, scalars)
