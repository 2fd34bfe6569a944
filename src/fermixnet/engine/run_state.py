"""What a run persists: the training state beside the weights in each checkpoint, the model
metadata, the summary written to `metrics.json`, and the status a run folder shows on disk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fermixnet import __version__
from fermixnet.config import Config
from fermixnet.engine import checkpoint as ckpt
from fermixnet.engine.evaluate import EvalResult
from fermixnet.engine.run_log import json_safe
from fermixnet.run_layout import RunLayout


@dataclass
class RunState:
    """Progress of a run, saved in `train_state.pt` (tensors and plain containers only)."""

    epoch: int = 0  # epochs completed
    global_step: int = 0
    step: int = 0
    """Steps done in the epoch in progress when the run stopped mid-epoch (0: at a boundary)."""
    partial: dict[str, Any] | None = None
    """The epoch in progress when `step > 0`: its running sums and last `lr` (`EpochProgress`),
    `elapsed_s`, and the data's `rng` state (`TrainingData.rng_state`)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val: float | None = None


@dataclass
class Training:
    """What the epochs change and a checkpoint saves: the weights, the optimiser and its
    schedule, the fp16 loss scaler (None otherwise), the progress."""

    model: torch.nn.Module
    """The unwrapped model (no DDP wrapper)."""
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    state: RunState = field(default_factory=RunState)


def training_framing(cfg: Config) -> dict[str, Any]:
    """The framing shared by the training sets (`fermixnet.framing`), for `meta.json`; sets that
    disagree give `as_given` (no one framing to reproduce)."""
    from fermixnet.data.registry import spec_framing
    from fermixnet.framing import Framing

    found = {spec_framing(spec) for spec in cfg.data.train}
    return (found.pop() if len(found) == 1 else Framing()).to_meta()


def model_meta(cfg: Config, metrics: dict[str, Any]) -> dict[str, Any]:
    """`meta.json` content: classes, input size, mean/std, framing, config, metrics (strict
    JSON)."""
    return {
        "arch": cfg.model.name,
        "num_classes": cfg.model.num_classes,
        "classes": list(cfg.classes),
        "mid_branch": cfg.model.mid_branch,
        "input_size": cfg.model.input_size,
        "mean": list(cfg.data.mean),
        "std": list(cfg.data.std),
        "framing": training_framing(cfg),
        "config": cfg.to_dict(),
        "metrics": json_safe(metrics),
        "fermixnet_version": __version__,
    }


def restore(folder: Path, run: Training, cfg: Config) -> RunState:
    """Load weights (strictly), optimizer, scheduler and scaler of `run` from a checkpoint
    folder; returns the saved progress."""
    from fermixnet.models.weights import load_checkpoint

    loaded, meta = load_checkpoint(folder, device="cpu")
    if list(meta.get("classes", [])) != list(cfg.classes):
        raise ValueError(f"{folder}: checkpoint classes {meta.get('classes')} differ from the "
                         f"config's {list(cfg.classes)}")
    try:
        run.model.load_state_dict(loaded.state_dict(), strict=True)
    except RuntimeError as err:
        raise ValueError(f"{folder}: the checkpoint's model ({meta.get('arch')}, mid_branch="
                         f"{meta.get('mid_branch')}) does not match the config's "
                         f"({cfg.model.name}, mid_branch={cfg.model.mid_branch}): {err}") from None
    state = ckpt.load_train_state(folder)
    if "lr_lambdas" not in state["scheduler"]:  # written before schedules became per-step
        raise ValueError(f"{folder}: this checkpoint's learning-rate schedule was saved by an "
                         "older fermixnet (per-epoch schedulers) and cannot be resumed; start a "
                         f"new run, e.g. with --set model.pretrained={folder}/model.safetensors")
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if run.scaler is not None and state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    return RunState(epoch=int(state["epoch"]), global_step=int(state["global_step"]),
                    history=list(state["history"]), best_epoch=state.get("best_epoch"),
                    best_val=state.get("best_val"), step=int(state.get("step", 0)),
                    partial=state.get("partial"))


def save(layout: RunLayout, names: list[str], run: Training, cfg: Config) -> None:
    """Write the checkpoint folders `names` (`best` before `last`) of the run folder atomically."""
    st = run.state
    train_state = {
        "epoch": st.epoch, "global_step": st.global_step, "history": st.history,
        "best_epoch": st.best_epoch, "best_val": st.best_val, "step": st.step,
        "partial": st.partial,
        "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict() if run.scaler is not None else None,
    }
    meta = model_meta(cfg, st.history[-1] if st.history else {})
    for name in names:
        ckpt.save_train_checkpoint(layout.checkpoints, name, run.model, meta, train_state)


def run_status(run_dir: Path) -> str:
    """`complete` (`metrics.json` says so), `partial` (has a checkpoint to resume) or `new`."""
    layout = RunLayout(run_dir)
    if layout.metrics_json.is_file():
        try:
            if json.loads(layout.metrics_json.read_text(encoding="utf-8")).get(
                    "status") == "complete":
                return "complete"
        except json.JSONDecodeError:
            pass
    if ckpt.recoverable(layout.checkpoints, "last"):
        return "partial"
    return "new"


def summary(st: RunState, cfg: Config, status: str, test: dict | None = None) -> dict[str, Any]:
    """The `metrics.json` summary: status, best epoch/value, test results if any."""
    out: dict[str, Any] = {
        "name": cfg.name, "status": status, "epochs": cfg.train.epochs,
        "epochs_completed": st.epoch, "select": f"val_{cfg.eval.select}",
        "best_epoch": st.best_epoch, "best_val": st.best_val,
    }
    if test is not None:
        out["test"] = {
            name: {which: brief(r) for which, r in res.items()} for name, res in test.items()
        }
    return out


def brief(r: EvalResult) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-head and per-subset accuracy of a test result."""
    fused = r.heads["fused"]
    return {
        "accuracy": fused["overall"]["accuracy"],
        "balanced_accuracy": fused["overall"]["balanced_accuracy"],
        "heads": {h: b["overall"]["accuracy"] for h, b in r.heads.items()},
        "subsets": {s: m["accuracy"] for s, m in fused["subsets"].items()},
    }
