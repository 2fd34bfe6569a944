"""Shared fixtures."""

from __future__ import annotations

# ---------------------------------------------------------------- fermixnet serve
import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SERVE_ARCH = "tiny-serve-test"


@contextlib.contextmanager
def _serve_trunk() -> Iterator[None]:
    """A three-conv trunk registered for the duration only (other tests see the real list)."""
    from torch import nn

    from fermixnet.models import Trunk, register_model, registry

    class TinyServeTrunk(Trunk):
        channels = (16, 32)

        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
            self.layer3 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())
            self.layer4 = nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU())

        def forward_features(self, x):
            f4 = self.layer3(self.stem(x))
            return f4, self.layer4(f4)

        def conv5_module(self) -> nn.Module:
            return self.layer4

    register_model(SERVE_ARCH)(TinyServeTrunk)
    try:
        yield
    finally:
        registry._TRUNKS.pop(SERVE_ARCH, None)  # the registry has no public unregister


@pytest.fixture(scope="module")
def serve_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A random tiny FERMixNet (48 px input) as a checkpoint folder and as an exported ONNX
    file; the tiny trunk stays registered while the module's tests run."""
    import torch

    from fermixnet.inference.export import export_model
    from fermixnet.models import create_model
    from fermixnet.models.weights import load_checkpoint, save_checkpoint

    folder = tmp_path_factory.mktemp("serve_ckpt")
    with _serve_trunk():
        torch.manual_seed(0)
        model = create_model(SERVE_ARCH, num_classes=7, mid_branch=True)
        for m in model.modules():  # random BatchNorm statistics: eval mode is exercised
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        save_checkpoint(model, folder / "ckpt", {"input_size": 48, "metrics": {"val_acc": 0.5}})
        model, meta = load_checkpoint(folder / "ckpt")
        onnx = folder / "model.onnx"
        export_model(model, meta, onnx, fmt="onnx")
        yield {"torch": folder / "ckpt", "onnx": onnx}


def synth_scene(indices: tuple[int, ...] = (0, 11), size: int = 112) -> np.ndarray:
    """Faces of the project's synthetic generator (test split, ``indices``) side by side on a
    smooth 320x200 gradient: the Haar detector finds both (the default ones)."""
    from fermixnet.data import synthetic

    yy, xx = np.mgrid[0:200, 0:320]
    scene = np.stack([90 + 0.3 * xx, 110 + 0.2 * yy, 130 + 0.1 * (xx + yy)], -1)
    scene = scene.clip(0, 255).astype(np.uint8)
    for j, index in enumerate(indices):
        face, _, _ = synthetic.render_sample(0, "test", index, size, synthetic.SynthConfig())
        x = 36 + 136 * j
        scene[44 : 44 + size, x : x + size] = face
    return scene


@pytest.fixture(scope="session")
def synth_face_png() -> bytes:
    """PNG bytes of :func:`synth_scene`: two generator faces, 320x200."""
    buf = io.BytesIO()
    Image.fromarray(synth_scene()).save(buf, format="PNG")
    return buf.getvalue()
