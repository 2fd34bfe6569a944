"""`fermixnet serve` under load, the old request path and the live path in one run.

For each backend (PyTorch checkpoint, ONNX Runtime fp32, ONNX Runtime int8) the real CLI
(``python -m fermixnet.cli serve``) serves a freshly saved ResNet-18 FERMixNet (``--size`` px,
random weights: speed does not depend on them; the ONNX file is written by
``fermixnet.inference.export``, the int8 one by ``fermixnet.inference.quantize`` calibrated on 64
synthetic faces) on a free port of 127.0.0.1. Client threads then post one 512x512 JPEG with one
synthetic face (``predict_bench.write_scenes``) until ``--requests`` answers or
``--max-seconds``, at each of ``--clients`` (default 1 and 4):

- before: ``POST /api/predict`` (multipart upload) to a server started with ``--workers 1``: the
  previous version's request path and its one-request-at-a-time lock. With ``--before-src DIR``
  the previous version's code itself serves it (``git archive <commit> src | tar -x -C DIR``).
- after: ``POST /api/frame`` (the JPEG as the body) to a server with one worker per core.

Reported: requests/s over the wall time, p50/p95 latency, that every answer was 200 with one
face, and after/before ratios. Every server runs alone; the clients share its cores.
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
BACKENDS = ("torch", "onnxruntime", "int8")
MODES = {"before": ("/api/predict", 1), "after": ("/api/frame", 0)}  # path, --workers


def write_models(folder: Path, size: int, backends: list[str]) -> dict[str, Path]:
    """The checkpoint folder (torch), its ONNX export and the int8 file, as asked for."""
    from fermixnet.inference.export import export_model, write_sidecar
    from fermixnet.models import create_model
    from fermixnet.models.weights import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(create_model("resnet18", 7, mid_branch=True).eval(), folder / "ckpt",
                    {"input_size": size})
    paths = {"torch": folder / "ckpt"}
    if {"onnxruntime", "int8"} & set(backends):
        model, meta = load_checkpoint(folder / "ckpt")
        export_model(model, meta, folder / "model.onnx", fmt="onnx")
        paths["onnxruntime"] = folder / "model.onnx"
    if "int8" in backends:
        from fermixnet.inference.quantize import quantize_int8
        from synthetic_faces import faces, normalise

        calib = normalise(faces(64, size)[0])
        paths["int8"] = quantize_int8(folder / "model.onnx", calib, folder / "model.int8.onnx")
        write_sidecar(paths["int8"], meta, export_format="onnx")
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(checkpoint: Path, port: int, threads: int, workers: int | None,
                 src: Path | None = None, detector: str = "auto") -> subprocess.Popen:
    """The real CLI on 127.0.0.1:port (``src``: another version's sources); returns once
    /api/health answers."""
    import httpx2 as httpx  # the test extra's HTTP client (Starlette's test client uses it)

    cmd = [sys.executable, "-m", "fermixnet.cli", "serve", "--checkpoint", str(checkpoint),
           "--port", str(port), "--detector", detector]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    env = dict(os.environ)
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
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
    """``clients`` threads posting ``photo`` until ``requests`` answers or ``seconds`` pass
    (multipart to /api/predict, the raw JPEG to /api/frame)."""
    import httpx2 as httpx  # the test extra's HTTP client (Starlette's test client uses it)

    latencies: list[float] = []
    failures: list[str] = []
    taken = [0]
    guard = threading.Lock()
    stop_at = time.monotonic() + seconds
    multipart = "/api/predict" in url

    def post(http) -> Any:
        if multipart:
            return http.post(url, files={"file": ("scene.jpg", photo, "image/jpeg")})
        return http.post(url, content=photo, headers={"content-type": "image/jpeg"})

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            while time.monotonic() < stop_at:
                with guard:
                    if taken[0] >= requests:
                        return
                    taken[0] += 1
                start = time.perf_counter()
                res = post(http)
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


def serve_and_load(args, checkpoint: Path, mode: str, photo: bytes) -> dict[str, Any]:
    """One server for ``mode``; a warm-up, then the load at each client count."""
    path, workers = MODES[mode]
    old = mode == "before" and args.before_src is not None
    port = free_port()
    proc = start_server(checkpoint, port, args.threads, None if old else workers,
                        args.before_src if old else None, args.detector)
    try:
        url = f"http://127.0.0.1:{port}{path}"
        load(url, photo, 1, 3, 60)  # warm-up: the first requests pay lazy set-up
        return {str(c): load(url, photo, c, args.requests, args.max_seconds)
                for c in args.clients}
    finally:
        proc.terminate()
        proc.wait(30)


def run(args, work: Path) -> dict[str, Any]:
    photo = write_scenes(work / "scenes", 1, side=args.side, face=args.face)[0].read_bytes()
    models = write_models(work, args.size, args.backends)
    out: dict[str, Any] = {"clients": args.clients, "model_size": args.size,
                           "photo_side": args.side, "face_side": args.face,
                           "detector": args.detector,
                           "before": "old code" if args.before_src else "/api/predict, 1 worker"}
    print(f"{'backend':12s} {'clients':>7s} {'before req/s':>12s} {'p95 ms':>8s} "
          f"{'after req/s':>12s} {'p95 ms':>8s} {'ratio':>6s}", file=sys.stderr)
    for backend in args.backends:
        runs = {mode: serve_and_load(args, models[backend], mode, photo) for mode in MODES}
        out[backend] = runs
        for c in args.clients:
            b, a = runs["before"][str(c)], runs["after"][str(c)]
            a["ratio_requests_per_s"] = a["requests_per_s"] / b["requests_per_s"]
            print(f"{backend:12s} {c:7d} {b['requests_per_s']:12.2f} {b['p95_ms']:8.1f} "
                  f"{a['requests_per_s']:12.2f} {a['p95_ms']:8.1f} "
                  f"{a['ratio_requests_per_s']:5.2f}x  failed {b['failed']}+{a['failed']}",
                  file=sys.stderr)
    return out


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4],
                        help=f"concurrent clients, one load per value (each <= {MAX_CLIENTS})")
    parser.add_argument("--requests", type=int, default=200,
                        help=f"requests per load (<= {MAX_REQUESTS})")
    parser.add_argument("--max-seconds", type=float, default=30,
                        help=f"time budget per load (<= {MAX_SECONDS})")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--before-src", type=Path, default=None,
                        help="the previous version's src/ folder: it serves the 'before' runs")
    parser.add_argument("--detector", default="auto", help="face detector of the server")
    parser.add_argument("--side", type=int, default=512, help="photo side in pixels")
    parser.add_argument("--face", type=int, default=160, help="face side in pixels")
    parser.add_argument("--size", type=int, default=112, help="model input size")
    args = parser.parse_args()
    if not (all(1 <= c <= MAX_CLIENTS for c in args.clients)
            and 1 <= args.requests <= MAX_REQUESTS and 0 < args.max_seconds <= MAX_SECONDS):
        parser.error(f"--clients 1..{MAX_CLIENTS}, --requests 1..{MAX_REQUESTS}, "
                     f"--max-seconds (0, {MAX_SECONDS}]")
    setup(args)
    if args.smoke:
        args.clients, args.requests, args.max_seconds, args.size = [1, 2], 6, 30, 48
        args.side, args.face = 256, 96
    with tempfile.TemporaryDirectory(prefix="fermixnet-serve-") as tmp:
        results = run(args, Path(tmp))
    finish("serve", args, results)


if __name__ == "__main__":
    main()
