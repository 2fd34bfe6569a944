"""Export a checkpoint to ONNX or TorchScript, with a parity check against eager PyTorch.

Both formats take a normalised (B, 3, H, W) float32 batch (B is dynamic) and return three
outputs: the fused logits, the high-level and the mid-level logits (decision fusion: logits =
high + mid; a model without the branch gives zeros for mid, see ``ExportWrapper``). The
checkpoint's metadata is written beside the file (``<file>.meta.json``) so
``fermixnet predict --backend onnxruntime|torchscript`` can read it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fermixnet.fileio import atomic_write
from fermixnet.models import ExportWrapper

FORMATS: tuple[str, ...] = ("onnx", "torchscript")


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_model` wrote and how close it is to eager PyTorch.

    Attributes:
        path: the exported file.
        format: ``onnx`` or ``torchscript``.
        max_abs_diff: largest absolute difference of any output on the check batches.
        batch_sizes: batch sizes the check ran with (exercising the dynamic batch axis).
    """

    path: Path
    format: str
    max_abs_diff: float
    batch_sizes: tuple[int, ...]


# `ExportWrapper` always returns three outputs; without the branch mid is zeros, logits == high.
OUTPUT_NAMES: tuple[str, ...] = ("logits", "high", "mid")


def _export_onnx(wrapped: nn.Module, example: torch.Tensor, path: Path, names: list[str]) -> None:
    if importlib.util.find_spec("onnx") is None:
        raise ValueError("ONNX export needs: pip install 'fermixnet[export]'")
    buf = io.StringIO()
    tmp = path.with_name(f".{path.name}.tmp")
    # The torch.export-based exporter is the maintained one; it needs onnxscript. Its progress
    # lines go to stdout, which we keep clean for the CLI's own report.
    dynamo = importlib.util.find_spec("onnxscript") is not None
    kwargs: dict[str, object] = {"input_names": ["input"], "output_names": names}
    if dynamo:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=4096)},)
    else:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, **{n: {0: "batch"} for n in names}}
    with contextlib.redirect_stdout(buf):
        torch.onnx.export(
            wrapped, (example,), str(tmp), dynamo=dynamo, external_data=False, **kwargs
        )
    os.replace(tmp, path)


def _export_torchscript(wrapped: nn.Module, example: torch.Tensor, path: Path) -> None:
    traced = torch.jit.trace(wrapped, example, check_trace=False)
    tmp = path.with_name(f".{path.name}.tmp")
    traced.save(str(tmp))
    os.replace(tmp, path)


def run_exported(path: str | os.PathLike[str], fmt: str, x: np.ndarray) -> list[np.ndarray]:
    """Run an exported file on a float32 batch; returns its outputs as numpy arrays."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return list(session.run(None, {session.get_inputs()[0].name: x}))
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return [t.numpy() for t in module(torch.from_numpy(x))]


def parity(model: nn.Module, path: str | os.PathLike[str], fmt: str, x: np.ndarray) -> float:
    """Max absolute difference between eager PyTorch and the exported file on batch ``x``."""
    wrapped = ExportWrapper(model).eval().cpu()
    with torch.inference_mode():
        ref = [t.numpy() for t in wrapped(torch.from_numpy(x))]
    got = run_exported(path, fmt, x)
    if len(got) != len(ref):
        raise ValueError(f"{path}: {len(got)} outputs, eager model has {len(ref)}")
    return max(float(np.abs(a - b).max()) for a, b in zip(ref, got, strict=True))


def write_sidecar(path: str | os.PathLike[str], meta: dict[str, object], **extra: object) -> None:
    """Write ``<path>.meta.json``: the checkpoint metadata plus the output names and ``extra``
    (``export_format``, ...), which ``fermixnet predict`` reads beside an exported file."""
    sidecar = {**meta, "outputs": list(OUTPUT_NAMES), **extra}
    atomic_write(f"{path}.meta.json", json.dumps(sidecar, indent=2) + "\n")


def export_model(
    model: nn.Module,
    meta: dict[str, object],
    out: str | os.PathLike[str],
    fmt: str = "onnx",
    check_batches: tuple[int, ...] = (1, 3),
    seed: int = 0,
) -> ExportReport:
    """Export ``model`` to ``out`` and check it against eager PyTorch.

    Args:
        model: a FERMixNet (any device; exported on CPU in float32).
        meta: the checkpoint metadata (written to ``<out>.meta.json``; must give input_size).
        out: file to write (``.onnx`` or ``.pt``).
        fmt: ``onnx`` or ``torchscript``.
        check_batches: batch sizes of the random parity batches (differ from the export
            batch of 2 to exercise the dynamic axis).
        seed: seed of the parity batches.

    Returns:
        An :class:`ExportReport` with the max abs difference.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown --format {fmt!r}; expected one of {', '.join(FORMATS)}")
    from fermixnet.inference.backends import predictor_options

    h, w = predictor_options(meta)["input_size"]  # type: ignore[misc]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu().float()
    wrapped = ExportWrapper(model).eval()
    g = torch.Generator().manual_seed(seed)
    example = torch.randn(2, 3, h, w, generator=g)
    if fmt == "onnx":
        _export_onnx(wrapped, example, path, list(OUTPUT_NAMES))
    else:
        _export_torchscript(wrapped, example, path)
    write_sidecar(path, meta, export_format=fmt)
    diffs = [
        parity(model, path, fmt, torch.randn(b, 3, h, w, generator=g).numpy())
        for b in check_batches
    ]
    return ExportReport(path, fmt, max(diffs), tuple(check_batches))
