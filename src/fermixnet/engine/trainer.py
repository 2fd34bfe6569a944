"""`fit`: the whole training run of a recipe, from data specs to evaluated checkpoints.

Rank 0 writes the run folder (`fermixnet.run_layout.RunLayout`; docs/training.md): the resolved
`config.yaml`, `data.json`, the metrics, TensorBoard events, `checkpoints/last` and
`checkpoints/best` (best by validation, never by test), the test results with both, and
`plots/mix_samples.png` when the caller passes the report layer's `preview` hook.

Each epoch is seeded from `(train.seed, epoch)` alone (data order, augmentation, p_mix draws,
mixing; `TrainingData.set_epoch`), so `resume` after a kill reproduces the uninterrupted run.

SIGTERM or SIGUSR1 (and SIGUSR2 in a submitit task) stops training at the next step boundary
(`fermixnet.engine.preemption`): `checkpoints/last` is written mid-epoch with the epoch's progress
and random state, so `resume` continues to the weights and metrics of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import torch

from fermixnet.config import Config
from fermixnet.data.cached import skip_records
from fermixnet.engine import checkpoint as ckpt
from fermixnet.engine import run_state
from fermixnet.engine.datasets import check_landmark_detectors
from fermixnet.engine.distributed import barrier, init_distributed, shutdown_distributed
from fermixnet.engine.evaluate import EvalResult, evaluate
from fermixnet.engine.loop import (
    EpochContext,
    EpochProgress,
    EpochTotals,
    StepInfo,
    TrainingDivergedError,
    train_one_epoch,
)
from fermixnet.engine.optim import build_optimizer, build_scheduler
from fermixnet.engine.preemption import StopRequest, TrainingStopped, stop_signals
from fermixnet.engine.run_log import RunLogger, write_json
from fermixnet.engine.run_state import RunState, Training
from fermixnet.engine.runtime import Runtime
from fermixnet.engine.train_data import TrainingData
from fermixnet.run_layout import CHECKPOINTS

__all__ = ["FitResult", "PreviewHook", "TrainingDivergedError", "TrainingStopped", "fit"]

PreviewHook = Callable[[torch.Tensor, Config, Path, torch.Tensor | None], None]
"""`(images (N, 3, H, W) uint8, config, run folder, landmarks)`: what `fit` shows before
training; landmarks (N, 5, 2) in the images' pixels (NaN rows: none) when the configured mixer
places its regions by them, else None."""


@dataclass
class FitResult:
    """Outcome of `fit`."""

    out_dir: Path
    epochs_completed: int
    best_epoch: int | None
    """1-based epoch with the best validation metric (None without validation: last is used)."""
    best_val: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    test: dict[str, dict[str, EvalResult]] = field(default_factory=dict)
    """test set -> {"last": result with the last weights, "best": with the best-by-validation}."""


def fit(
    cfg: Config,
    out_dir: str | Path,
    resume: bool = False,
    *,
    hook: Callable[[StepInfo], None] | None = None,
    preview: PreviewHook | None = None,
) -> FitResult:
    """Train a recipe, select the best epoch on validation, evaluate the test sets.

    Under `torchrun` the same call trains with DistributedDataParallel (gloo on CPU, nccl on CUDA).

    Args:
        cfg: the validated config.
        out_dir: run folder (created).
        resume: continue from `out_dir/checkpoints/last` (same final state as an uninterrupted run).
        hook: called after every optimisation step (tests: simulated kills, divergence).
        preview: called once on rank 0 before training with a few unaugmented training images,
            the config, the run folder and the images' landmarks (for a mixer that reads them;
            else None) (`fermixnet.report.plots.mix_samples_preview` draws
            `plots/mix_samples.png`; the engine itself draws nothing).

    Returns:
        A `FitResult` with the history and the test results (last and best-by-validation weights).

    Raises:
        ValueError: bad config/data, an existing run without `resume`, classes that do not match.
        FileNotFoundError: a data root or the checkpoint to resume is missing.
        TrainingDivergedError: the loss or a tensor to checkpoint became NaN/inf;
            `checkpoints/last` and `best` are the last good ones.
        TrainingStopped: SIGTERM/SIGUSR1 (SIGUSR2 under submitit, after its requeue handler
            ran) stopped training at a step boundary; `checkpoints/last` resumes it. Signals
            are caught only when `fit` runs in the main thread.
    """
    cfg.check_inputs()  # fail in milliseconds, before any cache is built
    check_landmark_detectors(cfg)
    out_dir = Path(out_dir)
    if cfg.train.cpu_threads is not None:
        torch.set_num_threads(cfg.train.cpu_threads)
    dist, device = init_distributed(cfg.train.device)
    owns_group = dist.enabled
    stop = StopRequest(stop_signals())
    in_main = threading.current_thread() is threading.main_thread()
    try:
        with stop if in_main else contextlib.nullcontext():
            try:
                return _fit(Runtime.create(cfg, out_dir, dist, device, stop), resume, hook,
                            preview)
            except TrainingStopped as err:
                if dist.is_main:
                    print(f"fermixnet: {err}", file=sys.stderr, flush=True)
                stop.forward()  # the signal's previous handler, e.g. submitit's requeue
                raise
    finally:
        if owns_group:
            shutdown_distributed()


def _fit(rt: Runtime, resume: bool, hook: Callable[[StepInfo], None] | None,
         preview: PreviewHook | None) -> FitResult:
    """The training procedure (Sec. 4.2): data, model, optimiser and schedule are built in that
    order; each epoch trains (Eq. 9 with FERMix, Sec. 3.2-3.3), validates and checkpoints; the
    test sets are evaluated with the last and the best-by-validation weights."""
    cfg, layout = rt.cfg, rt.layout
    last = _open_run_folder(rt, resume)
    torch.manual_seed(cfg.train.seed)
    data = TrainingData(cfg, rt.dist, rt.device)
    if rt.dist.is_main:  # the run folder records what each data set skipped, and why
        write_json(layout.data_json, {"caches": skip_records(
            data.sets.train, data.sets.val, *(t.dataset for t in data.test_sets))})
    model = _build_model(cfg, rt.device, rt.channels_last)
    optimizer = build_optimizer(cfg.optim, model)
    scheduler = build_scheduler(cfg.sched, optimizer, cfg.train.epochs, data.steps_per_epoch)
    run = Training(model, optimizer, scheduler, rt.scaler)
    if last is not None:
        run.state = run_state.restore(last, run, cfg)
    state = run.state
    if preview is not None and rt.dist.is_main:
        images, landmarks = data.preview_batch(4)
        preview(images, cfg, rt.out_dir, landmarks)
    logger = RunLogger(rt.out_dir, rt.dist.is_main,
                       purge_step=state.global_step if resume else None)
    try:
        _train_epochs(rt, run, data, logger, hook)
        test = _final_tests(rt, run, data)
        if rt.dist.is_main:
            write_json(layout.metrics_json,
                       {**run_state.summary(state, cfg, "complete", test),
                        "history": state.history})
    finally:
        logger.close()
    return FitResult(rt.out_dir, state.epoch, state.best_epoch, state.best_val, state.history,
                     test)


def _open_run_folder(rt: Runtime, resume: bool) -> Path | None:
    """Check `resume` against the folder, create it and save the config; returns the checkpoint
    to resume from (None for a new run). Rank 0 first repairs an interrupted checkpoint swap."""
    layout = rt.layout
    if rt.dist.is_main and layout.checkpoints.is_dir():
        for name in CHECKPOINTS:
            ckpt.recover(layout.checkpoints, name)
    barrier()
    last: Path | None = layout.last
    if not ckpt.is_complete(last):
        last = None
    if resume and last is None:
        raise FileNotFoundError(f"{layout.last}: no checkpoint to resume from")
    if not resume and last is not None:
        raise ValueError(f"{rt.out_dir} already holds a run; continue it with --resume "
                         f"{rt.out_dir} or choose another --out")
    if rt.dist.is_main:
        rt.out_dir.mkdir(parents=True, exist_ok=True)
        ckpt.clean_temporaries(layout.checkpoints)
        rt.cfg.save(layout.config)
    return last


def _build_model(cfg: Config, device: torch.device, channels_last: bool) -> torch.nn.Module:
    from fermixnet.models import create_model

    model = create_model(cfg.model.name, num_classes=cfg.model.num_classes,
                         mid_branch=cfg.model.mid_branch, pretrained=cfg.model.pretrained)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _epoch_context(rt: Runtime, run: Training, data: TrainingData, logger: RunLogger,
                   hook: Callable[[StepInfo], None] | None) -> EpochContext:
    """What `train_one_epoch` needs: the Eq. 9 loss, FERMix and its p_mix gate, precision."""
    from fermixnet.augment import build_mixer
    from fermixnet.losses import CoTrainingLoss

    cfg, device = rt.cfg, rt.device
    return EpochContext(
        criterion=CoTrainingLoss(cfg.loss.alpha, cfg.loss.beta,
                                 mode="cotrain" if cfg.mix.cotrain else "alternate"),
        optimizer=run.optimizer, scheduler=run.scheduler, device=device,
        mean=torch.tensor(cfg.data.mean, device=device).view(1, 3, 1, 1),
        std=torch.tensor(cfg.data.std, device=device).view(1, 3, 1, 1),
        num_classes=cfg.model.num_classes, mixer=build_mixer(cfg.mix),
        p_mix=cfg.mix.p_mix, generator=data.mix_generator,
        amp_dtype=rt.amp_dtype, scaler=rt.scaler, channels_last=rt.channels_last,
        grad_clip=cfg.optim.grad_clip, log_every=cfg.train.log_every,
        world_size=rt.dist.world_size, show_progress=rt.dist.is_main, hook=hook,
        log=logger.scalars, stop=rt.stop.agreed,
    )


def _train_epochs(rt: Runtime, run: Training, data: TrainingData, logger: RunLogger,
                  hook: Callable[[StepInfo], None] | None) -> None:
    """Epochs from where the run stands to `train.epochs`: train, validate, checkpoint; stop
    at a step boundary when a stop signal came."""
    model = run.model
    if rt.dist.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            run.model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    ctx = _epoch_context(rt, run, data, logger, hook)
    st = run.state
    for epoch in range(st.epoch, rt.cfg.train.epochs):
        t0 = time.perf_counter()
        data.set_epoch(epoch)
        start, earlier_s = _resumed_epoch(rt, st, data)
        first = st.global_step - start.step  # steps before this epoch
        end = train_one_epoch(model, data.train_batches(start.step), ctx, epoch, first, start)
        if end.stopped:
            _save_mid_epoch(rt, run, data, end.progress, earlier_s + time.perf_counter() - t0)
            _stopped(rt, st)
        row = {"epoch": epoch + 1, "global_step": first + end.progress.step,
               "lr": end.progress.lr, **end.metrics(), **_validate(rt, run.model, data)}
        row["time_s"] = earlier_s + time.perf_counter() - t0
        _end_epoch(rt, run, row, logger)
        if rt.stop.agreed():  # came during validation or checkpointing: `last` is this epoch
            _stopped(rt, st)


def _resumed_epoch(rt: Runtime, st: RunState, data: TrainingData) -> tuple[EpochProgress, float]:
    """The progress and seconds already spent of the epoch that a mid-epoch checkpoint stopped
    in, with the data's random state put back (a fresh epoch otherwise). Every process draws
    the same amount from identically seeded streams, so rank 0's saved state is every rank's."""
    if not st.step or st.partial is None:
        return EpochProgress(), 0.0
    part = st.partial
    data.set_rng_state(part["rng"])
    # rank 0 saved the sums of all processes; the others count on from zero
    totals = EpochTotals(part["sums"]) if rt.dist.is_main else EpochTotals()
    return EpochProgress(st.step, totals, part["lr"]), float(part["elapsed_s"])


def _save_mid_epoch(rt: Runtime, run: Training, data: TrainingData, progress: EpochProgress,
                    elapsed_s: float) -> None:
    """Write `last` at this step boundary (not `best`, not the history): the epoch's progress,
    seconds and the data's random state, so that `resume` finishes it as if uninterrupted."""
    st = run.state
    st.global_step += progress.step - st.step
    st.step = progress.step
    st.partial = {"sums": progress.totals.to_list(), "lr": progress.lr, "elapsed_s": elapsed_s,
                  "rng": data.rng_state()}
    if rt.dist.is_main:
        run_state.save(rt.layout, ["last"], run, rt.cfg)


def _stopped(rt: Runtime, st: RunState) -> NoReturn:
    """`metrics.json` says `stopped` (job scripts requeue on it), then every process raises
    `TrainingStopped` together."""
    if rt.dist.is_main:
        write_json(rt.layout.metrics_json,
                   {**run_state.summary(st, rt.cfg, "stopped"), "history": st.history})
    barrier()  # the checkpoint and the status are on disk before any process exits
    raise TrainingStopped(rt.stop.received, st.epoch, st.step, str(rt.layout.last))


def _end_epoch(rt: Runtime, run: Training, row: dict[str, Any], logger: RunLogger) -> None:
    """Record the epoch, keep the best-by-validation epoch, write `best`/`last` checkpoints."""
    cfg, st = rt.cfg, run.state
    st.epoch, st.global_step = row["epoch"], row["global_step"]
    st.step, st.partial = 0, None
    st.history.append(row)
    value = row.get(f"val_{cfg.eval.select}")
    improved = value is not None and (st.best_val is None or value > st.best_val)
    if improved:
        st.best_epoch, st.best_val = st.epoch, value
    if rt.dist.is_main:
        names = ["best", "last"] if improved else ["last"]
        run_state.save(rt.layout, names, run, cfg)
        logger.epoch(st.history, run_state.summary(st, cfg, "running"))
        val = f" val {value:.4f}" if value is not None else ""
        print(f"epoch {st.epoch}/{cfg.train.epochs} loss {row['train_loss']:.4f} "
              f"acc {row['train_acc']:.4f}{val} {row['images_per_s']:.1f} img/s", flush=True)
    barrier()


def _validate(rt: Runtime, model: torch.nn.Module, data: TrainingData) -> dict[str, float]:
    if data.val is None:
        return {}
    res = evaluate(model, data.eval_loader(data.val), rt.inputs, rt.cfg.classes, dataset="val")
    out = {"val_accuracy": res.accuracy(), "val_balanced_accuracy":
           res.heads["fused"]["overall"]["balanced_accuracy"]}
    out.update({f"val_accuracy_{h}": res.accuracy(h) for h in res.heads if h != "fused"})
    return out


def _test(rt: Runtime, model: torch.nn.Module, data: TrainingData,
          which: str) -> dict[str, EvalResult]:
    results = {}
    for t in data.test_sets:
        res = evaluate(model, data.eval_loader(t.dataset), rt.inputs, rt.cfg.classes,
                       subsets=t.subsets, dataset=t.name)
        if rt.dist.is_main:
            res.save(rt.layout.eval_json(t.name, which))
        results[t.name] = res
    return results


def _final_tests(rt: Runtime, run: Training,
                 data: TrainingData) -> dict[str, dict[str, EvalResult]]:
    """Test sets with the last weights, then with the best-by-validation weights."""
    results: dict[str, dict[str, EvalResult]] = {t.name: {} for t in data.test_sets}
    if not data.test_sets:
        return results
    for name, res in _test(rt, run.model, data, "last").items():
        results[name]["last"] = res
    best, st = rt.layout.best, run.state
    if ckpt.is_complete(best) and st.best_epoch not in (None, st.epoch):
        from fermixnet.models.weights import load_checkpoint

        run.model.load_state_dict(load_checkpoint(best, device="cpu")[0].state_dict(),
                                  strict=True)
        for name, res in _test(rt, run.model, data, "best").items():
            results[name]["best"] = res
    else:  # the last epoch is the best one (or there is no validation set)
        for name, res in results.items():
            res["best"] = res["last"]
            if rt.dist.is_main:
                res["last"].save(rt.layout.eval_json(name, "best"))
    return results
