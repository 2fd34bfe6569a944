"""Where a Predictor's forward pass comes from: our checkpoint in eager PyTorch, or a file
written by ``fermixnet export`` in ONNX Runtime or TorchScript, each as a function from
normalised crops to fused logits, with the metadata (classes, input size, mean/std, framing)
that the checkpoint's ``meta.json`` or the export's ``.meta.json`` sidecar records.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from fermixnet.framing import Framing
from fermixnet.models.contract import DEFAULT_INPUT_SIZE, IMAGENET_MEAN, IMAGENET_STD

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "torchscript")

# A batch of normalised float32 crops (B, 3, H, W) -> fused logits (B, K) as numpy.
LogitsFn = Callable[[np.ndarray], np.ndarray]


def normalise_crops(crops: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB crops -> (N, 3, H, W) float32 model input: scaled to [0, 1] and
    normalised with the checkpoint's mean/std, as the training step does on the device."""
    m = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
    x = crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return np.ascontiguousarray((x - m) / s, dtype=np.float32)


def sidecar_meta(path: str | os.PathLike[str]) -> dict[str, object]:
    """``meta.json`` written beside an exported model (``<file>.meta.json``)."""
    meta_path = Path(f"{path}.meta.json")
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{meta_path} is missing: exported models are read with the metadata that "
            "`fermixnet export` writes beside them"
        )
    return json.loads(meta_path.read_text())


def predictor_options(meta: dict[str, object]) -> dict[str, object]:
    """Predictor arguments from checkpoint metadata (classes, input size, mean/std, template,
    framing); a checkpoint without ``framing`` gets None (the behaviour of earlier versions)."""
    from fermixnet.labels import class_names

    size = meta.get("input_size", DEFAULT_INPUT_SIZE)
    size = (
        (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[-1]))
    )
    classes = meta.get("classes") or class_names(int(meta["num_classes"]))
    template = meta.get("align_template")
    return {
        "classes": tuple(classes),
        "input_size": size,
        "mean": tuple(meta.get("mean") or IMAGENET_MEAN),
        "std": tuple(meta.get("std") or IMAGENET_STD),
        "template": None if template is None else np.asarray(template, dtype=np.float64),
        "framing": None if meta.get("framing") is None else Framing.from_meta(meta["framing"]),
    }


def torch_runner(model: torch.nn.Module, device: torch.device) -> LogitsFn:
    """The fused logits of an eager or TorchScript model, in inference mode, channels-last."""
    model = model.eval().to(device, memory_format=torch.channels_last)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
            out = model(t)
            logits = out.logits if hasattr(out, "logits") else out[0]
            return logits.float().cpu().numpy()

    return run


def onnx_runner(path: str | os.PathLike[str], device: str) -> LogitsFn:
    """The ``logits`` output of an exported ONNX file in ONNX Runtime (CUDA when asked for and
    available)."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ValueError("--backend onnxruntime needs: pip install 'fermixnet[export]'") from err
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    # Idle threads sleep instead of spinning, so that they leave the cores to the detector's
    # threads between forward passes (benchmarks/frames_bench.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=providers)
    input_name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {input_name: x})[0]

    return run


def load_backend(path: str | os.PathLike[str], device: str | torch.device,
                 backend: str = "torch") -> tuple[LogitsFn, dict[str, object]]:
    """The logits function and metadata of a checkpoint (``torch``) or an exported file.

    Args:
        path: checkpoint folder / ``model.safetensors`` for ``torch``; the ``.onnx`` or ``.pt``
            file written by ``fermixnet export`` for ``onnxruntime`` and ``torchscript``.
        device: torch device (``onnxruntime`` uses CUDA when given ``cuda`` and available).
        backend: one of :data:`BACKENDS`.

    Raises:
        ValueError: an unknown backend, or an exported file given to ``torch``.
        FileNotFoundError: a missing exported file or sidecar.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown --backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    device = torch.device(device)
    if backend == "torch":
        from fermixnet.models.weights import load_checkpoint

        suffix = Path(path).suffix.lower()
        if suffix in (".onnx", ".pt", ".ts"):
            other = "onnxruntime" if suffix == ".onnx" else "torchscript"
            raise ValueError(f"--checkpoint {path} is an exported model: add --backend {other}")
        model, meta = load_checkpoint(str(path), device=str(device))
        return torch_runner(model, device), meta
    if not Path(path).is_file():
        raise FileNotFoundError(f"--checkpoint {path}: expected the file `fermixnet export` wrote")
    meta = sidecar_meta(path)
    if backend == "onnxruntime":
        return onnx_runner(path, str(device)), meta
    return torch_runner(torch.jit.load(str(path), map_location=device), device), meta
