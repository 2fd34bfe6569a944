"""`fermixnet serve` under load: N concurrent clients on localhost, requests/s and latency.

For each backend (PyTorch, ONNX Runtime) the real CLI (``python -m fermixnet.cli serve``) serves a
freshly saved ResNet-18 FERMixNet (112 px, random weights: speed does not depend on them; the ONNX
file is written by ``fermixnet.inference.export``) on a free port of 127.0.0.1. ``--clients``
threads then post one 512x512 JPEG with one synthetic face (``predict_bench.write_scenes``) to
``/api/predict`` (optionally ``?occluder=...``) until ``--requests`` answers or ``--max-seconds``,
whichever comes first. Reported: requests/s over the wall time, p50/p95 latency per request,
and that every answer was 200 with one face. The server runs one request through the detector
and model at a time (a lock), so requests/s measures the whole pipeline and the clients measure
queueing on top of it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import base_parser, finish, setup
from predict_bench import write_scenes

MAX_CLIENTS, MAX_REQUESTS, MAX_SECONDS = 32, 2000, 300


def write_models(folder: Path, size: int, backends: list[str]) -> dict[str, Path]:
    """The checkpoint folder (torch) and, when asked for, its ONNX export (onnxruntime)."""
    from fermixnet.inference.export import export_model
    from fermixnet.models import create_model
    from fermixnet.models.weights import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(create_model("resnet18", 7, mid_branch=True).eval(), folder / "ckpt",
                    {"input_size": size})
    paths = {"torch": folder / "ckpt"}
    if "onnxruntime" in backends:
        model, meta = load_checkpoint(folder / "ckpt")
        export_model(model, meta, folder / "model.onnx", fmt="onnx")
        paths["onnxruntime"] = folder / "model.onnx"
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(checkpoint: Path, port: int, threads: int) -> subprocess.Popen:
    """The real CLI on 127.0.0.1:port; returns once /api/health answers."""
    import httpx2 as httpx  # the test extra's HTTP client (Starlette's test client uses it)

    cmd = [sys.executable, "-m", "fermixnet.cli", "serve", "--checkpoint", str(checkpoint),
           "--port", str(port)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads > 0 else None
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("server did not answer /api/health within 120 s")


def load(url: str, photo: bytes, clients: int, requests: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads posting ``photo`` until ``requests`` answers or ``seconds`` pass."""
    import httpx2 as httpx  # the test extra's HTTP client (Starlette's test client uses it)

    latencies: list[float] = []
    failures: list[str] = []
    taken = [0]
    guard = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            while time.monotonic() < stop_at:
                with guard:
                    if taken[0] >= requests:
                        return
                    taken[0] += 1
                start = time.perf_counter()
                res = http.post(url, files={"file": ("scene.jpg", photo, "image/jpeg")})
                elapsed = time.perf_counter() - start
                ok = res.status_code == 200 and len(res.json()["results"][0]["faces"]) == 1
                with guard:
                    latencies.append(elapsed)
                    if not ok:
                        failures.append(f"{res.status_code}: {res.text[:200]}")

    workers = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    ms = np.asarray(latencies) * 1e3
    return {
        "requests": len(latencies),
        "failed": len(failures),
        "first_failure": failures[0] if failures else None,
        "wall_s": wall,
        "requests_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
    }


def run(args, work: Path) -> dict[str, Any]:
    photo = write_scenes(work / "scenes", 1, side=args.side, face=args.face)[0].read_bytes()
    models = write_models(work, args.size, args.backends)
    query = f"?occluder={args.occluder}" if args.occluder else ""
    out: dict[str, Any] = {"clients": args.clients, "model_size": args.size,
                           "photo_side": args.side, "occluder": args.occluder}
    for backend in args.backends:
        port = free_port()
        proc = start_server(models[backend], port, args.threads)
        try:
            url = f"http://127.0.0.1:{port}/api/predict{query}"
            load(url, photo, 1, args.clients, 60)  # warm-up: first requests pay lazy set-up
            out[backend] = load(url, photo, args.clients, args.requests, args.max_seconds)
        finally:
            proc.terminate()
            proc.wait(30)
        r = out[backend]
        print(f"{backend:12s} {r['requests']:5d} requests  {r['requests_per_s']:7.2f} req/s  "
              f"p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  failed {r['failed']}",
              file=sys.stderr)
    return out


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4,
                        help=f"concurrent clients (<= {MAX_CLIENTS})")
    parser.add_argument("--requests", type=int, default=200,
                        help=f"requests per backend (<= {MAX_REQUESTS})")
    parser.add_argument("--max-seconds", type=float, default=60,
                        help=f"time budget per backend (<= {MAX_SECONDS})")
    parser.add_argument("--backends", nargs="+", choices=("torch", "onnxruntime"),
                        default=["torch", "onnxruntime"])
    parser.add_argument("--occluder", default=None, help="also occlude, e.g. mask")
    parser.add_argument("--side", type=int, default=512, help="photo side in pixels")
    parser.add_argument("--face", type=int, default=160, help="face side in pixels")
    parser.add_argument("--size", type=int, default=112, help="model input size")
    args = parser.parse_args()
    if not (1 <= args.clients <= MAX_CLIENTS and 1 <= args.requests <= MAX_REQUESTS
            and 0 < args.max_seconds <= MAX_SECONDS):
        parser.error(f"--clients 1..{MAX_CLIENTS}, --requests 1..{MAX_REQUESTS}, "
                     f"--max-seconds (0, {MAX_SECONDS}]")
    setup(args)
    if args.smoke:
        args.clients, args.requests, args.max_seconds, args.size = 2, 6, 30, 48
        args.side, args.face = 256, 96
    with tempfile.TemporaryDirectory(prefix="fermixnet-serve-") as tmp:
        results = run(args, Path(tmp))
    finish("serve", args, results)


if __name__ == "__main__":
    main()
