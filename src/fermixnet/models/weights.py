"""Our checkpoints (`model.safetensors` + `meta.json`) and foreign pretrained weights.

Our format is self-describing: the safetensors file holds the state dict, the JSON sidecar holds
everything needed to rebuild and use the model (architecture, classes, input size, mean/std,
config, metrics, code version). Both are written atomically (temp file, then `os.replace`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from fermixnet import __version__, labels
from fermixnet.fileio import atomic_save, atomic_write
from fermixnet.models.contract import (
    DEFAULT_INPUT_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    META_NAME,
    WEIGHTS_NAME,
)
from fermixnet.models.fermixnet import FERMixNet
from fermixnet.models.pretrained import LoadReport, load_pretrained
from fermixnet.models.registry import create_model

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "META_NAME",
    "WEIGHTS_NAME",
    "LoadReport",
    "load_checkpoint",
    "load_pretrained",
    "save_checkpoint",
    "unwrap_model",
]

_AUTO_FIELDS = ("arch", "num_classes", "mid_branch")


def unwrap_model(model: nn.Module) -> FERMixNet:
    """The FERMixNet inside DDP/DataParallel (`.module`) or torch.compile (`._orig_mod`) wrappers.

    Raises:
        ValueError: if no FERMixNet is found.
    """
    seen: object = model
    for _ in range(4):
        if isinstance(seen, FERMixNet):
            return seen
        inner = getattr(seen, "module", None)
        seen = inner if inner is not None else getattr(seen, "_orig_mod", None)
        if seen is None:
            break
    raise ValueError(f"expected a FERMixNet (or a wrapper of one), got {type(model).__name__}")


def _default_classes(num_classes: int) -> list[str]:
    if num_classes in (7, 8):
        return list(labels.class_names(num_classes))
    return [f"class_{i}" for i in range(num_classes)]


def save_checkpoint(model: nn.Module, folder: str | Path, meta: Mapping[str, Any]) -> Path:
    """Writes `folder/model.safetensors` and `folder/meta.json`, each atomically.

    `arch`, `num_classes`, `mid_branch` and `fermixnet_version` are filled from the model and the
    code; `classes`, `input_size`, `mean` and `std` get defaults (canonical names, 224, ImageNet)
    when `meta` lacks them. Everything else in `meta` (config, metrics, ...) is stored as given.

    Args:
        model: a FERMixNet, possibly wrapped by DDP or torch.compile.
        folder: created if missing.
        meta: JSON-serialisable metadata.

    Returns:
        The path of the safetensors file.

    Raises:
        ValueError: if `meta` contradicts the model (e.g. another `num_classes`) or is not JSON,
            or a tensor holds NaN/inf (nothing is written).
    """
    net = unwrap_model(model)
    auto = {"arch": net.arch, "num_classes": net.num_classes, "mid_branch": net.mid_branch}
    for key in _AUTO_FIELDS:
        if key in meta and meta[key] != auto[key]:
            raise ValueError(f"meta[{key!r}]={meta[key]!r} contradicts the model ({auto[key]!r})")
    full: dict[str, Any] = {
        **auto,
        "classes": _default_classes(net.num_classes),
        "input_size": DEFAULT_INPUT_SIZE,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        **dict(meta),
        "fermixnet_version": __version__,
    }
    if len(full["classes"]) != net.num_classes:
        raise ValueError(f"meta['classes'] has {len(full['classes'])} names, "
                         f"the model has {net.num_classes} classes")
    try:
        text = json.dumps(full, indent=2, sort_keys=True)
    except TypeError as err:
        raise ValueError(f"meta is not JSON-serialisable: {err}") from err
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise ValueError(f"{folder}: not written: tensor {bad[0]!r} holds NaN/inf "
                         f"({len(bad)} tensors in all)")
    weights = folder / WEIGHTS_NAME
    atomic_save(weights, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    atomic_write(folder / META_NAME, text + "\n")
    return weights


def _resolve(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    weights = path / WEIGHTS_NAME if path.is_dir() else path
    meta = weights.with_name(META_NAME)
    for f in (weights, meta):
        if not f.is_file():
            raise FileNotFoundError(f"checkpoint file not found: {f} (a checkpoint is a folder "
                                    f"with {WEIGHTS_NAME} and {META_NAME}, written by training)")
    return weights, meta


def read_meta(path: str | Path) -> dict[str, Any]:
    """The `meta.json` of a checkpoint folder or of a `model.safetensors` path.

    Raises:
        FileNotFoundError: missing files.
        ValueError: invalid JSON, or missing `arch`/`num_classes`/`mid_branch`.
    """
    _, meta_path = _resolve(path)
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta_path}: invalid JSON at line {err.lineno}: {err.msg}") from err
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: expected a JSON object, found {type(meta).__name__}")
    for key in _AUTO_FIELDS:
        if key not in meta:
            raise ValueError(f"{meta_path}: missing field {key!r}")
    return meta


def _field_of(key: str) -> str:
    """The meta.json field a mismatching tensor most likely contradicts."""
    if key.startswith("mid."):
        return "mid_branch" if not key.startswith("mid.fc.") else "num_classes"
    return "num_classes" if key.startswith("fc.") else "arch"


def _check_state_dict(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: Path, meta_path: Path
) -> None:
    """Raises ValueError naming the first key/shape disagreement and the meta field behind it."""
    expected = model.state_dict()
    for key, ref in expected.items():
        if key not in state:
            raise ValueError(f"{source}: tensor {key!r} is missing; {meta_path.name} field "
                             f"{_field_of(key)!r} does not match the weights")
        if tuple(state[key].shape) != tuple(ref.shape):
            raise ValueError(
                f"{source}: tensor {key!r} has shape {tuple(state[key].shape)}, the model from "
                f"{meta_path.name} expects {tuple(ref.shape)} (field {_field_of(key)!r} differs)")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise ValueError(f"{source}: unexpected tensor {extra[0]!r} ({len(extra)} in all); "
                         f"{meta_path.name} field {_field_of(extra[0])!r} does not match")


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[FERMixNet, dict[str, Any]]:
    """Rebuilds a model from `meta.json` and loads `model.safetensors` strictly.

    Args:
        path: the checkpoint folder or its `model.safetensors`.
        device: where to put the model.

    Returns:
        (model in eval mode on `device`, meta dict).

    Raises:
        FileNotFoundError: missing files.
        ValueError: naming the file and the differing field when weights and meta disagree.
    """
    weights, meta_path = _resolve(path)
    meta = read_meta(weights)
    try:
        model = create_model(meta["arch"], meta["num_classes"], mid_branch=bool(meta["mid_branch"]))
    except ValueError as err:  # e.g. an arch this version does not know
        raise ValueError(f"{meta_path}: {err}") from err
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{weights}: not a readable safetensors file: {err}") from err
    _check_state_dict(model, state, weights, meta_path)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), meta
