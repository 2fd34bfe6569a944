"""Shared helpers of the benchmark scripts: arguments, timing, machine description, JSON output.

Every script in `benchmarks/` is run as ``python benchmarks/<name>.py [--smoke] [--out FILE]``;
it prints its numbers and writes them as JSON (``{"name": ..., "machine": ..., "results": ...}``).
Ratios are always taken between timings of the same run, because the machines are shared and
absolute numbers drift.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from fermixnet.models.contract import IMAGENET_MEAN, IMAGENET_STD

MEAN, STD = IMAGENET_MEAN, IMAGENET_STD


def base_parser(description: str) -> argparse.ArgumentParser:
    """Argument parser with the options every benchmark takes (``--smoke``, ``--out``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds not minutes (for tests)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)"
    )
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    return parser


def setup(args: argparse.Namespace) -> torch.device:
    """Apply the common options; returns the device."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return torch.device(args.device)


def sync(device: torch.device) -> None:
    """Wait for queued device work so that wall-clock timings are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(
    fn: Callable[[], Any], warmup: int, repeats: int, device: torch.device | None = None
) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    device = device or torch.device("cpu")
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def time_interleaved(
    fns: dict[str, Callable[[], Any]], warmup: int, repeats: int, device: torch.device | None = None
) -> dict[str, list[float]]:
    """Like `time_fn` for several functions, called in turn so that drift affects all alike."""
    device = device or torch.device("cpu")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return float(statistics.median(values))


def matmul_gflops(
    device: torch.device, n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32
) -> dict[str, float]:
    """The matmul ceiling: GFLOP/s of an ``n x n x n`` float product (2 n^3 FLOPs).

    Two implementations are timed (best of ``repeats`` after warm-up): ``torch.mm`` (MKL/cuBLAS),
    and on CPUs the same product as a 1x1 convolution in channels_last (oneDNN's GEMM, the
    library that runs the model's convolutions; MKL picks slower AVX2 kernels on AMD CPUs). The
    ceiling is the faster of the two.

    Returns:
        ``{"mm": ..., "onednn": ..., "ceiling": ...}`` in GFLOP/s (``onednn`` only on CPUs).
    """
    flops = 2 * n**3
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    best = min(time_fn(lambda: torch.mm(a, b, out=out), 2, repeats, device))
    result = {"mm": flops / best / 1e9}
    if device.type == "cpu":
        # (1, n, h, w) NHWC with h * w = n pixels, times an (n, n) 1x1 kernel: an n^3 GEMM.
        side = int(n**0.5)
        x = torch.randn(1, n, side, n // side, dtype=dtype).contiguous(
            memory_format=torch.channels_last
        )
        w = torch.randn(n, n, 1, 1, dtype=dtype).contiguous(memory_format=torch.channels_last)
        best = min(time_fn(lambda: torch.nn.functional.conv2d(x, w), 2, repeats, device))
        result["onednn"] = 2 * n * n * side * (n // side) / best / 1e9
    result["ceiling"] = max(result.values())
    return result


def cpu_model() -> str:
    """The processor's model name (``lscpu``'s "Model name")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, threads, versions, GPU, date."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if device is not None and device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    return info


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON atomically (temp file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finish(name: str, args: argparse.Namespace, results: dict[str, Any], device=None) -> None:
    """Print ``results`` and write them (with the machine description) to ``args.out``."""
    data = {"name": name, "smoke": bool(args.smoke), "machine": machine_info(device),
            "results": results}
    print(json.dumps(results, indent=2, sort_keys=True))
    if args.out is not None:
        write_json(args.out, data)
        print(f"wrote {args.out}", file=sys.stderr)


def train_transform(size: int):
    """The RAF-DB recipe's per-sample uint8 augmentation (flip + crop with 1/8 padding).

    The engine's ``flip_crop`` preset (`fermixnet.augment.transforms`) when installed, else the
    same torchvision v2 composition.
    """
    try:
        from fermixnet.augment.transforms import build_transform
    except ImportError:
        from torchvision.transforms import v2

        return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomCrop(size, padding=round(size / 8))])
    return build_transform("flip_crop", size)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (``ru_maxrss``; KiB on Linux)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20
