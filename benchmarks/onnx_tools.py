"""ONNX export and ONNX Runtime helpers for the benchmarks.

int8 static quantisation is the library's (`fermixnet.inference.quantize`, behind
``fermixnet export --int8``): QDQ, per-channel int8 weights, uint8 activations, MinMax
calibration on a few hundred images, the layout that ONNX Runtime's x86 kernels (VNNI) run
fastest.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fermixnet.inference.quantize import ort_session, quantize_int8

__all__ = ["export_onnx", "ort_session", "quantize_int8"]


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
