"""One training epoch (DeiT-style engine): p_mix gating, one forward over main + mixed batch,
the Eq. 9 loss, mixed precision, SAM, progress bar, NaN checks, and stopping at a step boundary
(preemption): `train_one_epoch` then returns with `stopped` set and the progress a mid-epoch
checkpoint needs to finish the epoch as if uninterrupted."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
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
    """Everything `train_one_epoch` needs besides the model and the data: the step's settings
    and the epoch's reporting, built once (`fit` builds it before the first epoch). The state of
    an epoch is not here: `EpochTotals` and `EpochProgress` hold it."""

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
    epoch's last: True ends the epoch there, and `train_one_epoch` returns with `stopped` set.
    Under DDP every process must give the same answer (`fit` passes `StopRequest.agreed`)."""


class EpochTotals:
    """The running sums of an epoch, by name: `loss_sum` (of the steps' Eq. 9 losses), `correct`
    (main images predicted right), `seen` (main images) and `steps`. One float64 tensor holds
    them, so that DDP sums them in one all-reduce."""

    def __init__(self, values: torch.Tensor | Sequence[float] = (0.0, 0.0, 0.0, 0.0),
                 device: torch.device | None = None) -> None:
        self._t = torch.as_tensor(values, dtype=torch.float64, device=device)  # (4,)

    loss_sum = property(lambda self: self._t[0])
    correct = property(lambda self: self._t[1])
    seen = property(lambda self: self._t[2])
    steps = property(lambda self: self._t[3])

    def add_step(self, loss: torch.Tensor, main_logits: torch.Tensor | None,
                 y: torch.Tensor) -> None:
        """Count one step; `main_logits` is None when the mixed batch trained alone."""
        t = self._t
        t[0] += loss.detach().double()
        t[3] += 1
        if main_logits is not None:
            t[1] += (main_logits.detach().argmax(1) == y).sum()
            t[2] += y.numel()

    @property
    def mean_loss(self) -> float:
        return float(self.loss_sum / self.steps.clamp(min=1))

    @property
    def accuracy(self) -> float:
        """Train accuracy on the main images (NaN when none was seen)."""
        return float(self.correct / self.seen) if self.seen > 0 else float("nan")

    def to(self, device: torch.device) -> EpochTotals:
        """A copy on `device`."""
        return EpochTotals(self._t.to(device, copy=True))

    def reduced(self) -> EpochTotals:
        """The totals of all processes (a copy; this process's alone without DDP)."""
        return EpochTotals(all_reduce_sum(self._t.clone()))

    def loss_sum_of_all(self) -> float:
        """`loss_sum` summed over the processes (the NaN check's all-reduce of one number)."""
        return float(all_reduce_sum(self._t[:1].clone()))

    def to_list(self) -> list[float]:
        """`[loss_sum, correct, seen, steps]`: the form a mid-epoch checkpoint keeps."""
        return self._t.tolist()


@dataclass
class EpochProgress:
    """Where an epoch stands at a step boundary: what a mid-epoch checkpoint keeps so that the
    resumed epoch logs the same metrics as an uninterrupted one."""

    step: int = 0
    """Optimisation steps done in the epoch."""
    totals: EpochTotals = dataclasses.field(default_factory=EpochTotals)
    """The running sums (of all processes when returned or saved; rank 0 resumes with them, the
    other ranks with zeros)."""
    lr: float = float("nan")
    """The learning rate of the last step done."""


@dataclass
class EpochResult:
    """What `train_one_epoch` returns: the epoch's end or the step boundary where it stopped."""

    progress: EpochProgress
    """Steps done, the totals of all processes, the last step's learning rate."""
    stopped: bool
    """`ctx.stop` said stop before the epoch's last step: `progress` is what a mid-epoch
    checkpoint keeps to finish the epoch later."""
    images_per_s: float
    """Training images (main batch, all processes) per second of this call."""

    def metrics(self) -> dict[str, float]:
        """`train_loss` (mean over steps), `train_acc` (main images) and `images_per_s`."""
        t = self.progress.totals
        return {"train_loss": t.mean_loss, "train_acc": t.accuracy,
                "images_per_s": self.images_per_s}


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
) -> EpochResult:
    """Train one epoch over every batch of `loader` (`TrainingData.train_batches()` in `fit`),
    or up to the step boundary where `ctx.stop` says stop.

    Args:
        model, loader, ctx: what to train, on what, how.
        epoch: 0-based epoch.
        global_step: optimisation steps before this epoch.
        start: the progress of a resumed epoch; `loader` then yields its remaining batches.

    Returns:
        The progress (its `lr` is the rate of the last step: per-step schedules change it within
        the epoch), whether it `stopped` early, and the throughput.

    Raises:
        TrainingDivergedError: the loss became NaN/inf (checked every `log_every` steps).
    """
    model.train()
    start = start or EpochProgress()
    totals = start.totals.to(ctx.device)
    images, t0 = 0, time.perf_counter()
    total = start.step + len(loader)
    bar = progress_bar(loader, total=total, desc=f"epoch {epoch + 1}",
                       disable=not ctx.show_progress, leave=False, dynamic_ncols=True)
    bar.n = start.step  # a resumed epoch counts on (tqdm and LogProgress alike)
    step, lr, stopped = start.step, start.lr, False
    for step, (x, y, *marks) in enumerate(bar, start=start.step + 1):
        x = to_model_input(x, ctx.device, ctx.mean, ctx.std, ctx.channels_last)
        y = y.to(ctx.device, non_blocking=True)
        b = make_step_batch(x, y, ctx, marks[0] if marks else None)
        lr = ctx.optimizer.param_groups[0]["lr"]  # the rate this step uses
        res, main = optimize_step(model, b, ctx)
        if ctx.scheduler is not None:
            ctx.scheduler.step()
        totals.add_step(res.total, None if main is None else main.logits, y)
        images += y.numel()
        info = StepInfo(epoch, step, global_step + step, res.total.detach(), model)
        if ctx.hook is not None:
            ctx.hook(info)
        if step % ctx.log_every == 0 or step == total:
            _check_and_log(totals, ctx, info, bar, _images_per_s(images, ctx, t0), res.terms)
        if ctx.stop is not None and step < total and ctx.stop():
            stopped = True
            break
    bar.close()
    totals = totals.reduced()  # a stopped epoch's sums go to rank 0's checkpoint
    if not stopped:
        _raise_if_diverged(float(totals.loss_sum), epoch, step)
    return EpochResult(EpochProgress(step, totals, lr), stopped, _images_per_s(images, ctx, t0))


def _images_per_s(images: int, ctx: EpochContext, t0: float) -> float:
    return images * ctx.world_size / max(time.perf_counter() - t0, 1e-9)


def _raise_if_diverged(loss_sum: float, epoch: int, step: int) -> None:
    if not math.isfinite(loss_sum):
        raise TrainingDivergedError(
            f"loss became {loss_sum} in epoch {epoch + 1} by step {step}; training stopped"
        )


def _check_and_log(totals: EpochTotals, ctx: EpochContext, info: StepInfo, bar: Any,
                   images_per_s: float, terms: dict[str, torch.Tensor]) -> None:
    """Stop on a NaN/inf loss of any process; show and log the running loss and accuracy."""
    # The running sum stays NaN once a NaN entered it, so checking here catches every step.
    _raise_if_diverged(totals.loss_sum_of_all() / ctx.world_size, info.epoch, info.step)
    loss, acc = totals.mean_loss, totals.accuracy
    bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}", img_s=f"{images_per_s:.0f}")
    if ctx.log is not None:
        scalars = {"train/loss": loss, "train/acc": acc, "train/images_per_s": images_per_s,
                   "train/lr": ctx.optimizer.param_groups[0]["lr"]}
        scalars.update({f"train/loss_{k}": float(v.detach()) for k, v in terms.items()})
        ctx.log(info.global_step, scalars)
