"""ONNX export, ONNX Runtime sessions and int8 static quantisation for the benchmarks.

`quantize_int8` is the candidate for a ``fermixnet export --int8`` option: static quantisation
(QDQ format, per-channel int8 weights, uint8 activations, MinMax calibration) on a few hundred
calibration images, the layout that ONNX Runtime's x86 kernels (VNNI) run fastest.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch


def export_onnx(model: torch.nn.Module, size: int, path: Path) -> Path:
    """Export with ``fermixnet export``'s code (`fermixnet.inference.export.export_model`).

    The file has a dynamic batch axis, input ``input`` (B, 3, size, size) and outputs ``logits``
    (fused), ``high``, ``mid``; the exporter checks it against eager PyTorch. The model is left
    in the mode it was in.
    """
    from fermixnet.inference.export import export_model

    was_training = model.training
    meta = {"input_size": size, "num_classes": int(model.num_classes)}
    export_model(model, meta, path, fmt="onnx", check_batches=(1,))
    model.train(was_training)
    return Path(path)


def ort_session(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session with all graph optimisations and ``threads`` intra-op threads
    (default: torch's thread count, so both runtimes use the same cores)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _CalibrationReader:
    """Feeds calibration images to ONNX Runtime's calibrator in batches."""

    def __init__(self, images: np.ndarray, input_name: str, batch: int) -> None:
        self._batches: Iterator[np.ndarray] = iter(
            [images[i : i + batch] for i in range(0, len(images), batch)]
        )
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:  # the calibrator reads the data once; nothing to rewind
        return None


def quantize_int8(
    onnx_path: str | Path, calib_images: np.ndarray, out_path: str | Path, batch: int = 32
) -> Path:
    """Static int8 quantisation of an fp32 ONNX classifier.

    Args:
        onnx_path: the fp32 model (one image input).
        calib_images: (N, 3, H, W) float32, normalised as the model expects; a few hundred
            representative faces.
        out_path: where to write the int8 model (atomically).
        batch: calibration batch size.

    Returns:
        ``out_path``.

    Raises:
        ValueError: ``calib_images`` is not a float32 (N, 3, H, W) array with N >= 1.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calib = np.ascontiguousarray(calib_images, dtype=np.float32)
    if calib.ndim != 4 or calib.shape[1] != 3 or len(calib) == 0:
        raise ValueError(f"calib_images: expected float32 (N, 3, H, W), got {calib.shape}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # ONNX shape inference + fp32 fusions (the symbolic pass fails on the exporter's Reshape).
        quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
        input_name = ort_session(pre, threads=1).get_inputs()[0].name
        staged = Path(tmp) / "int8.onnx"
        quantize_static(
            str(pre), str(staged), _CalibrationReader(calib, input_name, batch),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        os.replace(staged, out_path)
    return out_path
