"""Shared fixtures, in sections (other test areas add theirs in their own section):

- threads: `one_thread`;
- tiny models and checkpoints: `_tiny_trunk`, `checkpoint_options`, `checkpoint`;
- generated engine data: `make_manifest`, `tiny_config`;
- fermixnet serve: `serve_checkpoints`, `synth_scene`, `synth_face_png`;
- live camera: `uvicorn_thread`, `synth_clip`, `write_y4m`, `synth_clip_y4m`;
- SLURM: `job_script` (the multi-node script of docs/training.md).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fermixnet.labels import CANONICAL

# --- threads ----------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`-n 2`, as `make test` runs) every worker computes on one thread, and
    so do the subprocesses it starts: two workers on two cores, not four threads fighting."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a shared CPU it is several times faster than two, and
    subprocesses run with OMP_NUM_THREADS=1 then compute exactly the same floats."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- generated fer2013.csv --------------------------------------------------------------------

FER2013_HEADER = "emotion,pixels,Usage"


def _write_fer2013_csv(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """`root/fer2013.csv` with the release's header: `counts` rows per Usage (Training,
    PublicTest, PrivateTest), emotion codes 0..6 in turn, random 48x48 grayscale pixels."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = [FER2013_HEADER]
    for usage, n in counts.items():
        for i in range(n):
            pixels = " ".join(map(str, rng.integers(0, 256, 48 * 48)))
            lines.append(f"{i % 7},{pixels},{usage}")
    path = root / "fer2013.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def make_fer2013_csv() -> Callable[..., Path]:
    """`make_fer2013_csv(root, {"Training": 21, "PublicTest": 7, "PrivateTest": 7})`."""
    return _write_fer2013_csv


# --- tiny models and checkpoints --------------------------------------------------------------

TINY_ARCH = "tiny-inference-test"


@contextlib.contextmanager
def _registered_tiny_trunk() -> Iterator[None]:
    """Register a three-conv trunk with BatchNorm for the duration (keeps export and CAM tests
    fast), and remove it afterwards so other tests see only the real model list."""
    from torch import nn

    from fermixnet.models import Trunk, register_model, registry

    class TinyTrunk(Trunk):
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

    register_model(TINY_ARCH)(TinyTrunk)
    try:
        yield
    finally:
        registry._TRUNKS.pop(TINY_ARCH, None)  # the registry has no public unregister


@pytest.fixture(scope="module")
def _tiny_trunk() -> Iterator[None]:
    """The tiny trunk registered as `tiny-inference-test` for the module's tests."""
    with _registered_tiny_trunk():
        yield


@pytest.fixture(scope="module")
def checkpoint_options() -> dict[str, int]:
    """`input_size` and `seed` of the `checkpoint` fixture (a module may override this)."""
    return {"input_size": 48, "seed": 0}


@pytest.fixture(scope="module")
def checkpoint(_tiny_trunk, tmp_path_factory: pytest.TempPathFactory,
               checkpoint_options: dict[str, int]) -> Path:
    """A randomly initialised tiny FERMixNet saved with save_checkpoint; BatchNorm statistics
    are randomised so eval mode is exercised."""
    from fermixnet.models import create_model
    from fermixnet.models.weights import save_checkpoint

    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(checkpoint_options.get("seed", 0))
    model = create_model(TINY_ARCH, num_classes=7, mid_branch=True)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    save_checkpoint(model, folder, {"input_size": checkpoint_options["input_size"]})
    return folder


# --- generated engine data --------------------------------------------------------------------

OCCLUSIONS = ("none", "upper", "lower", "left", "right", "corner")


def _write_manifest(root: Path, per_class: int = 6, size: int = 32, classes: int = 7,
                    test_per_class: int = 3, seed: int = 0) -> Path:
    """Write `per_class` train and `test_per_class` test PNGs per class plus `manifest.csv`.

    Each class has its own colour and stripe position, so a tiny model can learn it; test rows
    get an `occlusion` and `occluder` value (a grey block over the named region) for subsets.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for split, n in (("train", per_class), ("test", test_per_class)):
        for c in range(classes):
            for k in range(n):
                img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                img[..., c % 3] += np.uint8(120 + 10 * c)
                band = (c * size) // classes
                img[band: band + max(2, size // classes), :, :] = 255
                occ = OCCLUSIONS[(c + k) % len(OCCLUSIONS)] if split == "test" else "none"
                if occ in ("upper", "lower"):
                    sl = slice(0, size // 2) if occ == "upper" else slice(size // 2, size)
                    img[sl] = 128
                rel = f"{split}/{CANONICAL[c]}_{k}.png"
                (root / split).mkdir(exist_ok=True)
                Image.fromarray(img).save(root / rel)
                occluder = "mask" if occ == "lower" else ("sunglasses" if occ == "upper" else "")
                rows.append([rel, CANONICAL[c], split, occ, occluder])
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split", "occlusion", "occluder"])
        w.writerows(rows)
    return root


def _write_tiny_config(tmp: Path, root: Path, epochs: int = 3) -> Path:
    """A recipe small enough for a shared 2-core CPU: ResNet-18 at 32 px, 2 steps per epoch."""
    path = tmp / "tiny.yaml"
    path.write_text(f"""
model: {{name: resnet18, num_classes: 7, input_size: 32}}
data: {{train: ["manifest:{root}"], test: ["manifest:{root}"], workers: 0,
        cache_dir: "{tmp / 'cache'}"}}
mix: {{p_mix: 0.5}}
optim: {{lr: 0.02}}
sched: {{name: step, step_size: 1, gamma: 0.5}}
train: {{epochs: {epochs}, batch_size: 8, device: cpu, log_every: 1}}
eval: {{batch_size: 16}}
""")
    return path


@pytest.fixture(scope="session")
def make_manifest() -> Callable[..., Path]:
    """`make_manifest(root, per_class=6, size=32, classes=7, test_per_class=3, seed=0)`: a
    generated manifest data set (see `_write_manifest`); returns `root`."""
    return _write_manifest


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., Path]:
    """`tiny_config(tmp, root, epochs=3)`: writes `tmp/tiny.yaml` training on `root`."""
    return _write_tiny_config


# --- fermixnet serve ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def serve_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A random tiny FERMixNet (48 px input) as a checkpoint folder and as an exported ONNX
    file; the tiny trunk stays registered while the module's tests run."""
    from fermixnet.inference.export import export_model
    from fermixnet.models import create_model
    from fermixnet.models.weights import load_checkpoint, save_checkpoint

    folder = tmp_path_factory.mktemp("serve_ckpt")
    with _registered_tiny_trunk():
        torch.manual_seed(0)
        model = create_model(TINY_ARCH, num_classes=7, mid_branch=True)
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
    from fermixnet.synth import generate as synthetic

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


# --- SLURM ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def job_script() -> str:
    """The multi-node job script of docs/training.md ("One run on N nodes x G GPUs"), as text."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    section = docs[docs.index("### One run on N nodes x G GPUs"):]
    return re.search(r"```bash\n(#!/bin/bash\n.*?)```", section, flags=re.S).group(1)


# --- fermixnet serve, live camera (frame API) -------------------------------------------------


@contextlib.contextmanager
def uvicorn_thread(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread on a free port of 127.0.0.1; yields its URL."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def synth_clip(frames: int = 12, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    """RGB frames of two generator faces (test split, samples 0 and 11, 96 px) gliding
    right by 4 pixels a frame over a gradient: the Haar detector finds both in every frame."""
    from fermixnet.synth import generate as synthetic

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    ground = np.stack([90 + 0.3 * xx, 110 + 0.2 * yy, 130 + 0.1 * (xx + yy)], -1)
    ground = ground.clip(0, 255).astype(np.uint8)
    faces = [synthetic.render_sample(0, "test", i, 96, synthetic.SynthConfig())[0]
             for i in (0, 11)]
    out = []
    for t in range(frames):
        frame = ground.copy()
        for j, face in enumerate(faces):
            x, y = 16 + 4 * t + 124 * j, (h - 96) // 2
            frame[y : y + 96, x : x + 96] = face
        out.append(frame)
    return out


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """RGB frames as a YUV 4:2:0 (BT.601 full range) .y4m file: what Chromium's fake camera
    plays with ``--use-file-for-fake-video-capture``."""
    import cv2

    h, w = frames[0].shape[:2]
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            fh.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="session")
def synth_clip_y4m(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`synth_clip` as a .y4m file for Chromium's fake camera."""
    return write_y4m(tmp_path_factory.mktemp("clip") / "faces.y4m", synth_clip())
