"""`fit`: the whole training run of a recipe, from data specs to evaluated checkpoints.

Run folder layout (rank 0 writes; see docs/training.md):
`config.yaml` (resolved), `metrics.csv`, `metrics.json`, `tensorboard/`, `checkpoints/last/` and
`checkpoints/best/` (best by validation, never by test), `eval/<test>-{last,best}.json`,
`plots/mix_samples.png`. Each epoch is seeded from `(train.seed, epoch)` alone (data order,
augmentation, p_mix draws, mixing), so `resume` after a kill reproduces the uninterrupted run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from fermixnet.config import Config
from fermixnet.data.cache import skip_records
from fermixnet.engine import checkpoint as ckpt
from fermixnet.engine import run_state
from fermixnet.engine.datasets import TestSet, build_test_sets, build_train_data
from fermixnet.engine.distributed import DistInfo, barrier, init_distributed, shutdown_distributed
from fermixnet.engine.evaluate import EvalResult, evaluate, shard_loader
from fermixnet.engine.loop import EpochContext, StepInfo, TrainingDivergedError, train_one_epoch
from fermixnet.engine.optim import build_optimizer, build_scheduler
from fermixnet.engine.run_log import RunLogger, write_json
from fermixnet.engine.run_state import RunState

__all__ = ["FitResult", "TrainingDivergedError", "fit"]


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


def _epoch_seed(seed: int, epoch: int, stream: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + stream) % (2**63)


def _precision(cfg: Config, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use GradScaler) for `train.amp` on this device."""
    amp = cfg.train.amp
    if amp == "auto":
        if device.type != "cuda":
            return None, False
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError(f"train.amp=fp16 needs CUDA, the device is {device} "
                             "(use --set train.amp=bf16 or off)")
        return torch.float16, True
    return (torch.bfloat16, False) if amp == "bf16" else (None, False)


def _build_model(cfg: Config, device: torch.device, channels_last: bool) -> torch.nn.Module:
    from fermixnet.models import create_model

    model = create_model(cfg.model.name, num_classes=cfg.model.num_classes,
                         mid_branch=cfg.model.mid_branch, pretrained=cfg.model.pretrained)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _train_loader(data, cfg: Config, dist: DistInfo, device: torch.device):
    """Loader, sampler and the generator that `_train_epochs` reseeds every epoch."""
    if cfg.train.batch_size % dist.world_size:
        raise ValueError(f"train.batch_size={cfg.train.batch_size} is not divisible by the "
                         f"{dist.world_size} processes")
    train_ds, per_proc = data.train, cfg.train.batch_size // dist.world_size
    if cfg.data.on_device:
        return _device_loader(data, cfg, dist, device, per_proc)
    sampler = None
    if cfg.data.balance == "sampler":
        if dist.enabled:
            raise ValueError("data.balance=sampler works in one process; under torchrun use "
                             "--set data.balance=downsample")
        from fermixnet.data.sampling import balanced_sampler

        sampler = balanced_sampler(data.train_labels, seed=cfg.train.seed)
    elif dist.enabled:
        sampler = DistributedSampler(train_ds, num_replicas=dist.world_size, rank=dist.rank,
                                     shuffle=True, seed=cfg.train.seed, drop_last=True)
    drop_last = len(train_ds) // dist.world_size >= per_proc  # BN needs > 1 image per batch
    gen = torch.Generator()
    loader = DataLoader(train_ds, batch_size=per_proc, shuffle=sampler is None, sampler=sampler,
                        num_workers=cfg.data.workers, drop_last=drop_last, generator=gen,
                        pin_memory=device.type == "cuda")
    return loader, sampler, gen


def _device_loader(data, cfg: Config, dist: DistInfo, device: torch.device, per_proc: int):
    """`data.on_device`: the training set as one uint8 tensor on `device`, batch-augmented."""
    from fermixnet.data.device_loader import TensorBatchLoader
    from fermixnet.engine.datasets import stacked_tensors

    a = cfg.aug
    if a.preset not in ("flip_crop", "none") or cfg.data.balance == "sampler":
        raise ValueError(f"data.on_device=true supports aug.preset flip_crop or none (got "
                         f"{a.preset}) and data.balance none or downsample (got "
                         f"{cfg.data.balance}); use --set data.on_device=false")
    images, labels = stacked_tensors(data.preview)
    loader = TensorBatchLoader(
        images.to(device), labels.to(device), per_proc,
        padding=round(cfg.model.input_size * a.crop_padding) if a.preset == "flip_crop" else 0,
        augment=a.preset == "flip_crop", seed=cfg.train.seed, padding_mode=a.crop_padding_mode,
        rank=dist.rank, world_size=dist.world_size)
    return loader, None, loader.generator


def _steps_per_epoch(loader: DataLoader, cfg: Config) -> int:
    cap = cfg.train.max_steps_per_epoch
    return len(loader) if cap is None else min(len(loader), cap)


class _Run:
    """State shared by the phases of one `fit` call (keeps each phase function short)."""

    def __init__(self, cfg: Config, out_dir: Path, dist: DistInfo, device: torch.device) -> None:
        self.cfg, self.out_dir, self.dist, self.device = cfg, out_dir, dist, device
        self.amp_dtype, use_scaler = _precision(cfg, device)
        self.channels_last = cfg.train.channels_last == "on" or (
            cfg.train.channels_last == "auto" and device.type == "cuda")
        self.scaler = torch.amp.GradScaler(device.type) if use_scaler else None
        self.ckpt_root = out_dir / "checkpoints"

    def eval_kwargs(self) -> dict[str, Any]:
        return dict(device=self.device, classes=self.cfg.classes, mean=self.cfg.data.mean,
                    std=self.cfg.data.std, channels_last=self.channels_last,
                    amp_dtype=self.amp_dtype)

    def loader(self, ds) -> DataLoader:
        return shard_loader(ds, self.cfg.eval.batch_size, self.cfg.data.workers,
                            self.dist.rank, self.dist.world_size)


def _prepare_data(run: _Run):
    """Build caches on rank 0 first so the other processes reuse them."""
    from fermixnet.augment.transforms import build_transform

    cfg = run.cfg
    a = cfg.aug
    transform = build_transform(a.preset, cfg.model.input_size, crop_padding=a.crop_padding,
                                crop_padding_mode=a.crop_padding_mode,
                                affine_translate=a.affine_translate, affine_scale=a.affine_scale)
    cache = Path(cfg.data.cache_dir) if cfg.data.cache_dir else None  # data default
    result = None
    for turn in (True, False):
        if run.dist.is_main == turn:
            data = build_train_data(cfg, cache, transform)
            tests = build_test_sets(cfg.data.test, cfg.model.input_size, cfg.classes, cache)
            result = (data, tests)
            if turn:  # the run folder records what each data set skipped, and why
                write_json(run.out_dir / "data.json", {"caches": skip_records(
                    data.train, data.val, *(t.dataset for t in tests))})
        barrier()
    assert result is not None
    return result


def _validate(run: _Run, model, val_ds) -> dict[str, float]:
    if val_ds is None:
        return {}
    res = evaluate(model, run.loader(val_ds), dataset="val", **run.eval_kwargs())
    out = {"val_accuracy": res.accuracy(), "val_balanced_accuracy":
           res.heads["fused"]["overall"]["balanced_accuracy"]}
    out.update({f"val_accuracy_{h}": res.accuracy(h) for h in res.heads if h != "fused"})
    return out


def _test(run: _Run, model, tests: list[TestSet], which: str) -> dict[str, EvalResult]:
    results = {}
    for t in tests:
        res = evaluate(model, run.loader(t.dataset), subsets=t.subsets, dataset=t.name,
                       **run.eval_kwargs())
        if run.dist.is_main:
            res.save(run.out_dir / "eval" / f"{t.name}-{which}.json")
        results[t.name] = res
    return results


def _write_mix_grid(run: _Run, preview) -> None:
    path = run.out_dir / "plots" / "mix_samples.png"
    if not run.dist.is_main or path.exists() or run.cfg.mix.method == "none":
        return
    from fermixnet.report.plots import plot_mix_samples

    picks = torch.linspace(0, len(preview) - 1, min(4, len(preview))).round().long().tolist()
    images = torch.stack([preview[i][0] for i in picks])  # spread over classes (sorted data)
    plot_mix_samples(images, run.cfg.mix, path, seed=run.cfg.train.seed)


def fit(
    cfg: Config,
    out_dir: str | Path,
    resume: bool = False,
    *,
    hook: Callable[[StepInfo], None] | None = None,
) -> FitResult:
    """Train a recipe, select the best epoch on validation, evaluate the test sets.

    Under `torchrun` the same call trains with DistributedDataParallel (gloo on CPU, nccl on CUDA).

    Args:
        cfg: the validated config.
        out_dir: run folder (created).
        resume: continue from `out_dir/checkpoints/last` (same final state as an uninterrupted run).
        hook: called after every optimisation step (tests: simulated kills, divergence).

    Returns:
        A `FitResult` with the history and the test results (last and best-by-validation weights).

    Raises:
        ValueError: bad config/data, an existing run without `resume`, classes that do not match.
        FileNotFoundError: a data root or the checkpoint to resume is missing.
        TrainingDivergedError: the loss or a tensor to checkpoint became NaN/inf;
            `checkpoints/last` and `best` are the last good ones.
    """
    out_dir = Path(out_dir)
    if cfg.train.cpu_threads is not None:
        torch.set_num_threads(cfg.train.cpu_threads)
    dist, device = init_distributed(cfg.train.device)
    owns_group = dist.enabled
    try:
        return _fit(_Run(cfg, out_dir, dist, device), resume, hook)
    finally:
        if owns_group:
            shutdown_distributed()


def _find_last(run: _Run) -> Path | None:
    """Rank 0 repairs an interrupted checkpoint swap; then every rank looks for `last`."""
    if run.dist.is_main and run.ckpt_root.is_dir():
        ckpt.recover(run.ckpt_root, "last")
        ckpt.recover(run.ckpt_root, "best")
    barrier()
    last = run.ckpt_root / "last"
    return last if ckpt.is_complete(last) else None


def _fit(run: _Run, resume: bool, hook) -> FitResult:
    cfg, dist = run.cfg, run.dist
    last = _find_last(run)
    if resume and last is None:
        raise FileNotFoundError(f"{run.ckpt_root / 'last'}: no checkpoint to resume from")
    if not resume and last is not None:
        raise ValueError(f"{run.out_dir} already holds a run; continue it with --resume "
                         f"{run.out_dir} or choose another --out")
    if dist.is_main:
        run.out_dir.mkdir(parents=True, exist_ok=True)
        ckpt.clean_temporaries(run.ckpt_root)
        cfg.save(run.out_dir / "config.yaml")
    torch.manual_seed(cfg.train.seed)
    data, tests = _prepare_data(run)
    model = _build_model(cfg, run.device, run.channels_last)
    optimizer = build_optimizer(cfg.optim, model)
    loader = _train_loader(data, cfg, dist, run.device)
    scheduler = build_scheduler(cfg.sched, optimizer, cfg.train.epochs,
                                _steps_per_epoch(loader[0], cfg))
    st = RunState()
    if resume:
        st = run_state.restore(last, model, optimizer, scheduler, run.scaler, cfg)
    _write_mix_grid(run, data.preview)
    logger = RunLogger(run.out_dir, dist.is_main, purge_step=st.global_step if resume else None)
    try:
        _train_epochs(run, model, optimizer, scheduler, data, loader, st, logger, hook)
        test = _final_tests(run, model, tests, st)
        if dist.is_main:
            write_json(run.out_dir / "metrics.json",
                       {**run_state.summary(st, cfg, "complete", test), "history": st.history})
    finally:
        logger.close()
    return FitResult(run.out_dir, st.epoch, st.best_epoch, st.best_val, st.history, test)


def _train_epochs(run, model, optimizer, scheduler, data, loader, st: RunState, logger,
                  hook) -> None:
    from fermixnet.augment import build_mixer
    from fermixnet.losses import CoTrainingLoss

    cfg, dist, device = run.cfg, run.dist, run.device
    wrapped = model
    if dist.enabled:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    mix_kwargs = dict(cfg.mix.options)
    if cfg.mix.method == "fermix":
        mix_kwargs.setdefault("probs", cfg.mix.probs)
    ctx = EpochContext(
        criterion=CoTrainingLoss(cfg.loss.alpha, cfg.loss.beta,
                                 mode="cotrain" if cfg.mix.cotrain else "alternate"),
        optimizer=optimizer, scheduler=scheduler, device=device,
        mean=torch.tensor(cfg.data.mean, device=device).view(1, 3, 1, 1),
        std=torch.tensor(cfg.data.std, device=device).view(1, 3, 1, 1),
        num_classes=cfg.model.num_classes, mixer=build_mixer(cfg.mix.method, **mix_kwargs),
        p_mix=cfg.mix.p_mix, cotrain=cfg.mix.cotrain, generator=torch.Generator(),
        amp_dtype=run.amp_dtype, scaler=run.scaler, channels_last=run.channels_last,
        grad_clip=cfg.optim.grad_clip, log_every=cfg.train.log_every,
        max_steps=cfg.train.max_steps_per_epoch, world_size=dist.world_size,
        show_progress=dist.is_main, hook=hook, log=logger.scalars,
    )
    loader, sampler, loader_gen = loader
    for epoch in range(st.epoch, cfg.train.epochs):
        t0 = time.perf_counter()
        torch.manual_seed(_epoch_seed(cfg.train.seed, epoch, 0))  # workers=0 transforms
        loader_gen.manual_seed(_epoch_seed(cfg.train.seed, epoch, 1))
        ctx.generator.manual_seed(_epoch_seed(cfg.train.seed, epoch, 2))
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        elif sampler is not None:  # class-balanced draws, also seeded per epoch
            sampler.generator.manual_seed(_epoch_seed(cfg.train.seed, epoch, 3))
        lr = optimizer.param_groups[0]["lr"]
        stats = train_one_epoch(wrapped, loader, ctx, epoch, st.global_step)
        row = {"epoch": epoch + 1, "global_step": st.global_step + stats.pop("steps"), "lr": lr,
               **stats, **_validate(run, model, data.val)}
        row["time_s"] = time.perf_counter() - t0
        _end_epoch(run, model, optimizer, scheduler, st, row, logger)


def _end_epoch(run, model, optimizer, scheduler, st: RunState, row, logger) -> None:
    cfg = run.cfg
    st.epoch, st.global_step = row["epoch"], row["global_step"]
    st.history.append(row)
    value = row.get(f"val_{cfg.eval.select}")
    improved = value is not None and (st.best_val is None or value > st.best_val)
    if improved:
        st.best_epoch, st.best_val = st.epoch, value
    if run.dist.is_main:
        names = ["best", "last"] if improved else ["last"]
        run_state.save(run.ckpt_root, names, model, optimizer, scheduler, run.scaler, st, cfg)
        logger.epoch(st.history, run_state.summary(st, cfg, "running"))
        val = f" val {value:.4f}" if value is not None else ""
        print(f"epoch {st.epoch}/{cfg.train.epochs} loss {row['train_loss']:.4f} "
              f"acc {row['train_acc']:.4f}{val} {row['images_per_s']:.1f} img/s", flush=True)
    barrier()


def _final_tests(run: _Run, model, tests: list[TestSet], st: RunState):
    """Test sets with the last weights, then with the best-by-validation weights."""
    results: dict[str, dict[str, EvalResult]] = {t.name: {} for t in tests}
    if not tests:
        return results
    for name, res in _test(run, model, tests, "last").items():
        results[name]["last"] = res
    best = run.ckpt_root / "best"
    if ckpt.is_complete(best) and st.best_epoch not in (None, st.epoch):
        from fermixnet.models.weights import load_checkpoint

        model.load_state_dict(load_checkpoint(best, device="cpu")[0].state_dict(), strict=True)
        for name, res in _test(run, model, tests, "best").items():
            results[name]["best"] = res
    else:  # the last epoch is the best one (or there is no validation set)
        for name, res in results.items():
            res["best"] = res["last"]
            if run.dist.is_main:
                res["last"].save(run.out_dir / "eval" / f"{name}-best.json")
    return results
