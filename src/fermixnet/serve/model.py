"""The served model: a Predictor whose forward pass also returns both heads' logits.

The page shows the paper's decision fusion (Sec. 3.4: fused logits = high + mid), so the model is
run through the export outputs ``(logits, high, mid)`` (:data:`fermixnet.inference.export.
OUTPUT_NAMES`) in both backends: ``FERMixNet.forward_export`` in PyTorch, the same three outputs
of a file written by ``fermixnet export`` in ONNX Runtime.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fermixnet.inference.backends import predictor_options, sidecar_meta
from fermixnet.inference.export import OUTPUT_NAMES
from fermixnet.inference.faces import FaceDetector, create_detector
from fermixnet.inference.frames import available_cores
from fermixnet.inference.predictor import Predictor

# Normalised crops (B, 3, H, W) float32 -> (fused, high, mid) logits, each (B, K).
HeadsFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class ServedModel:
    """One model shared by every request, run by ``workers`` requests at a time.

    Attributes:
        predictor: detector, alignment and preprocessing of the checkpoint; its ``logits_fn``
            gives the fused logits.
        heads: the same forward pass returning ``(fused, high, mid)`` logits.
        meta: the checkpoint's ``meta.json`` (or the export's sidecar).
        backend: ``torch`` or ``onnxruntime``.
        detectors: one face detector per worker (default: the predictor's, one worker). A
            request takes a free one for its detection (:meth:`worker`), so requests never share
            a detector: neither OpenCV's nor dlib's detectors are documented as thread-safe.
        serial_forward: run one forward pass at a time (PyTorch: its intra-op threads already
            use every core, and concurrent calls into one module are not documented as safe).
            ONNX Runtime documents concurrent ``Run`` calls on one session as safe, so its
            workers' forward passes overlap, each on ``cores / workers`` threads.
    """

    predictor: Predictor
    heads: HeadsFn
    meta: dict[str, object]
    backend: str
    detectors: list[FaceDetector] = field(default_factory=list)
    serial_forward: bool = True
    _free: queue.SimpleQueue = field(default_factory=queue.SimpleQueue, init=False, repr=False)
    _forward_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.detectors:
            self.detectors = [self.predictor.detector]
        for det in self.detectors:
            self._free.put(det)

    @property
    def workers(self) -> int:
        """How many requests run detection and inference at once."""
        return len(self.detectors)

    @property
    def has_mid(self) -> bool:
        """Whether the model has the mid-level branch (else there is one head, no fusion)."""
        return bool(self.meta.get("mid_branch", True))

    @contextlib.contextmanager
    def worker(self) -> Iterator[FaceDetector]:
        """A free worker's detector, held for one request's work (waits while all are busy)."""
        det = self._free.get()
        try:
            yield det
        finally:
            self._free.put(det)

    def run_heads(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(fused, high, mid)`` logits of normalised crops (B, 3, H, W)."""
        if not self.serial_forward:
            return self.heads(x)
        with self._forward_lock:
            return self.heads(x)


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


def _onnx_heads(
    path: str | os.PathLike[str], device: torch.device, threads: int
) -> tuple[HeadsFn, dict]:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ValueError("an .onnx checkpoint needs: pip install 'fermixnet[export]'") from err
    meta = sidecar_meta(path)
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    # Idle threads sleep instead of spinning: spinning threads of concurrent requests (and of
    # the detector) would fight over the same cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=providers)
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
    checkpoint: str | os.PathLike[str],
    detector: str = "auto",
    device: str = "cpu",
    workers: int = 0,
) -> ServedModel:
    """Load a checkpoint folder (PyTorch) or an exported ``.onnx`` file (ONNX Runtime, fp32 or
    the int8 file of ``fermixnet export --int8``).

    Args:
        checkpoint: checkpoint folder or ``model.safetensors``; or a ``.onnx`` file with its
            ``.meta.json`` sidecar.
        detector: face detector name (see :func:`fermixnet.inference.faces.create_detector`).
        device: torch device (ONNX Runtime uses CUDA when given ``cuda`` and available).
        workers: requests run at once, each with its own detector; 0: one per CPU core.

    Raises:
        FileNotFoundError: missing checkpoint files.
        ValueError: an unusable checkpoint, backend, detector or worker count.
    """
    if workers < 0:
        raise ValueError(f"--workers must be >= 0 (0: one per core), got {workers}")
    workers = workers or available_cores()
    path, dev = Path(checkpoint), torch.device(device)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise FileNotFoundError(f"--checkpoint {path}: no such file")
        threads = max(1, available_cores() // workers)
        heads, meta, backend = *_onnx_heads(path, dev, threads), "onnxruntime"
    elif path.suffix.lower() in (".pt", ".ts"):
        raise ValueError(f"--checkpoint {path}: serve runs a checkpoint folder or an .onnx file "
                         "written by `fermixnet export`, not TorchScript")
    else:
        heads, meta, backend = *_torch_heads(path, dev), "torch"
    detectors = [create_detector(detector) for _ in range(workers)]
    predictor = Predictor(
        lambda x: heads(x)[0], **predictor_options(meta), detector=detectors[0]
    )
    return ServedModel(predictor=predictor, heads=heads, meta=meta, backend=backend,
                       detectors=detectors, serial_forward=backend == "torch")
