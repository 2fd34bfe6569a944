"""The served model: a Predictor whose forward pass also returns both heads' logits.

The page shows the paper's decision fusion (Sec. 3.4: fused logits = high + mid), so the model is
run through the export outputs ``(logits, high, mid)`` (:data:`fermixnet.inference.export.
OUTPUT_NAMES`) in both backends: ``FERMixNet.forward_export`` in PyTorch, the same three outputs
of a file written by ``fermixnet export`` in ONNX Runtime.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fermixnet.inference.export import OUTPUT_NAMES
from fermixnet.inference.faces import create_detector
from fermixnet.inference.predictor import Predictor, predictor_options, sidecar_meta

# Normalised crops (B, 3, H, W) float32 -> (fused, high, mid) logits, each (B, K).
HeadsFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class ServedModel:
    """One model shared by every request.

    Attributes:
        predictor: detector, alignment and preprocessing of the checkpoint; its ``logits_fn``
            gives the fused logits.
        heads: the same forward pass returning ``(fused, high, mid)`` logits.
        meta: the checkpoint's ``meta.json`` (or the export's sidecar).
        backend: ``torch`` or ``onnxruntime``.
        lock: held around detection and the forward pass. Neither OpenCV's and dlib's detectors
            nor the use of one torch module from several threads at once are documented as
            thread-safe, and one request at a time keeps memory bounded; torch's and ONNX
            Runtime's own intra-op threads still use every core for that request.
    """

    predictor: Predictor
    heads: HeadsFn
    meta: dict[str, object]
    backend: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def has_mid(self) -> bool:
        """Whether the model has the mid-level branch (else there is one head, no fusion)."""
        return bool(self.meta.get("mid_branch", True))


def _torch_heads(path: str | os.PathLike[str], device: torch.device) -> tuple[HeadsFn, dict]:
    from fermixnet.models.weights import load_checkpoint

    model, meta = load_checkpoint(str(path), device=str(device))
    model = model.eval().to(device, memory_format=torch.channels_last)

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.inference_mode():
            t = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
            outs = model.forward_export(t)
            return tuple(o.float().cpu().numpy() for o in outs)  # type: ignore[return-value]

    return run, meta


def _onnx_heads(path: str | os.PathLike[str], device: torch.device) -> tuple[HeadsFn, dict]:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ValueError("an .onnx checkpoint needs: pip install 'fermixnet[export]'") from err
    meta = sidecar_meta(path)
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(path), providers=providers)
    names = [o.name for o in session.get_outputs()]
    if tuple(names) != OUTPUT_NAMES:
        raise ValueError(f"{path}: expected the outputs {OUTPUT_NAMES} of `fermixnet export`, "
                         f"got {tuple(names)}")
    input_name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fused, high, mid = session.run(list(OUTPUT_NAMES), {input_name: x})
        return fused, high, mid

    return run, meta


def load_served_model(
    checkpoint: str | os.PathLike[str], detector: str = "auto", device: str = "cpu"
) -> ServedModel:
    """Load a checkpoint folder (PyTorch) or an exported ``.onnx`` file (ONNX Runtime).

    Args:
        checkpoint: checkpoint folder or ``model.safetensors``; or a ``.onnx`` file with its
            ``.meta.json`` sidecar.
        detector: face detector name (see :func:`fermixnet.inference.faces.create_detector`).
        device: torch device (ONNX Runtime uses CUDA when given ``cuda`` and available).

    Raises:
        FileNotFoundError: missing checkpoint files.
        ValueError: an unusable checkpoint, backend or detector.
    """
    path, dev = Path(checkpoint), torch.device(device)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise FileNotFoundError(f"--checkpoint {path}: no such file")
        heads, meta, backend = *_onnx_heads(path, dev), "onnxruntime"
    elif path.suffix.lower() in (".pt", ".ts"):
        raise ValueError(f"--checkpoint {path}: serve runs a checkpoint folder or an .onnx file "
                         "written by `fermixnet export`, not TorchScript")
    else:
        heads, meta, backend = *_torch_heads(path, dev), "torch"
    predictor = Predictor(
        lambda x: heads(x)[0], **predictor_options(meta), detector=create_detector(detector)
    )
    return ServedModel(predictor=predictor, heads=heads, meta=meta, backend=backend)
