"""Training checkpoints that survive SIGKILL at any moment.

A checkpoint is a folder `RUN/checkpoints/<name>/` (`last` or `best`) holding the model
(`model.safetensors` + `meta.json`, written by `fermixnet.models.weights.save_checkpoint`) and
`train_state.pt` (optimizer, scheduler, grad scaler, epoch, step, history; tensors and plain
containers only, read back with `weights_only=True`).

Directories cannot be replaced atomically by `os.replace` when the target exists, so a new
checkpoint is written complete into a temporary sibling folder and swapped in with two renames:
`last -> .old-last`, `.tmp-last -> last`. A kill between the renames leaves `.old-last` complete,
and `recover` puts it back; a kill while writing leaves only a `.tmp-*` folder that is ignored.

A checkpoint is never written with a NaN/inf tensor (weights, BatchNorm buffers, optimizer
state): `save_train_checkpoint` raises `TrainingDivergedError` first and the previous one stays.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fermixnet.engine.loop import TrainingDivergedError
from fermixnet.fileio import atomic_write, temp_dir
from fermixnet.models.contract import META_NAME, WEIGHTS_NAME

STATE_FILE = "train_state.pt"
WEIGHTS_FILE, META_FILE = WEIGHTS_NAME, META_NAME
REQUIRED_FILES = (WEIGHTS_FILE, META_FILE, STATE_FILE)


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry so that a rename survives a power loss (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save` to memory, then an atomic write: a reader never sees half a file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, buf.getvalue())


def is_complete(folder: Path) -> bool:
    """True when `folder` holds every file of a checkpoint."""
    return all((folder / name).is_file() for name in REQUIRED_FILES)


def recoverable(root: Path, name: str) -> bool:
    """True when `recover(root, name)` finds a complete checkpoint (nothing is moved here)."""
    return is_complete(root / name) or is_complete(root / f".old-{name}")


def recover(root: Path, name: str) -> Path | None:
    """Return `root/name` if complete, restoring it from an interrupted swap when needed."""
    target = root / name
    if is_complete(target):
        return target
    old = root / f".old-{name}"
    if is_complete(old):
        if target.exists():
            shutil.rmtree(target)
        os.replace(old, target)
        _fsync_dir(root)
        return target
    return None


def first_non_finite(obj: Any, prefix: str = "") -> str | None:
    """The dotted key of the first floating tensor in `obj` (nested dicts, lists, tuples) that
    holds a NaN or an infinity, or None when every one is finite."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            return None if bool(torch.isfinite(obj).all()) else prefix or "tensor"
        return None
    if isinstance(obj, Mapping):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for key, value in items:
        found = first_non_finite(value, f"{prefix}.{key}" if prefix else str(key))
        if found is not None:
            return found
    return None


def _refuse_non_finite(root: Path, name: str, model: torch.nn.Module,
                       state: dict[str, Any]) -> None:
    """The loss NaN guard's sibling: a finite loss can still leave NaN weights (e.g. an inf
    gradient on the last step of an epoch); such a state is never saved."""
    bad = first_non_finite({"model": model.state_dict(), **state})
    if bad is not None:
        raise TrainingDivergedError(
            f"tensor {bad!r} became NaN/inf in epoch {state.get('epoch', '?')}; training stopped "
            f"and {root / name} was not overwritten")


def save_train_checkpoint(
    root: Path, name: str, model: torch.nn.Module, meta: dict[str, Any], state: dict[str, Any]
) -> Path:
    """Write a complete checkpoint into `root/name`, replacing the old one atomically.

    Args:
        root: `RUN/checkpoints`.
        name: `last` or `best`.
        model: the unwrapped model (no DDP wrapper).
        meta: metadata for `meta.json` (classes, input size, mean/std, config, metrics).
        state: training state for `train_state.pt` (tensors, numbers, strings, lists, dicts).

    Returns:
        The checkpoint folder.

    Raises:
        TrainingDivergedError: a tensor of the model or of `state` is NaN/inf (nothing written).
    """
    from fermixnet.models.weights import save_checkpoint

    _refuse_non_finite(root, name, model, state)
    root.mkdir(parents=True, exist_ok=True)
    recover(root, name)  # never destroy the only complete copy
    tmp = temp_dir(root, prefix=f".tmp-{name}-")
    try:
        save_checkpoint(model, tmp, meta)
        atomic_torch_save(state, tmp / STATE_FILE)
        _fsync_dir(tmp)
        target, old = root / name, root / f".old-{name}"
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        _fsync_dir(root)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_train_state(folder: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read `train_state.pt` with `weights_only=True` (never unpickles code)."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training state; is {folder} a training checkpoint?")
    return torch.load(path, map_location=map_location, weights_only=True)


def clean_temporaries(root: Path) -> None:
    """Remove `.tmp-*` folders left by a run killed while writing a checkpoint."""
    if root.is_dir():
        for tmp in root.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
