"""Inference benchmark: latency and images/s of the classifier in four runtimes, two sizes.

Runtimes: eager PyTorch (``inference_mode``, channels_last), ``torch.compile`` (Inductor, weights
frozen), ONNX Runtime fp32, and ONNX Runtime int8 (static quantisation calibrated on a few hundred
synthetic faces, `fermixnet.inference.quantize`). Each is timed at batch 1 (latency) and batch 64
(throughput), at 112 and 224 px, on normalised float32 NCHW numpy input (what the predictor
hands over; eager and compile pay for their layout conversion). The model is FERMixNet ResNet-18
briefly trained on synthetic faces (or ``--checkpoint``), so that agreement of int8 with fp32
predictions is measured on logits that carry signal.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import base_parser, finish, median, setup, time_fn
from onnx_tools import export_onnx, ort_session, quantize_int8
from synthetic_faces import faces, normalise, quick_model


class _Logits(torch.nn.Module):
    """Fused logits only (what prediction uses), as a module torch.compile can take."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_logits(x)


def torch_runner(module: torch.nn.Module, device: torch.device):
    """numpy NCHW float32 -> logits numpy, in inference mode and channels_last."""

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
            return module(t).float().cpu().numpy()

    return run


def ort_runner(path: Path):
    """numpy NCHW float32 -> fused logits from an ONNX Runtime session."""
    session = ort_session(path)
    return lambda x: session.run(["logits"], {"input": x})[0]


def time_runner(run, x1: np.ndarray, xb: np.ndarray, reps1: int, repsb: int) -> dict[str, float]:
    """Batch-1 latency and batch-B throughput of one runtime."""
    t1 = median(time_fn(lambda: run(x1), max(2, reps1 // 6), reps1))
    tb = median(time_fn(lambda: run(xb), 1, repsb))
    return {"batch1_ms": t1 * 1e3, "batch1_images_per_s": 1 / t1,
            f"batch{len(xb)}_ms": tb * 1e3, f"batch{len(xb)}_images_per_s": len(xb) / tb}


def logits_of(run, x: np.ndarray, batch: int) -> np.ndarray:
    """Logits of all of ``x`` in batches."""
    return np.concatenate([run(x[i : i + batch]) for i in range(0, len(x), batch)])


def compiled_runner(model: torch.nn.Module, device: torch.device, shapes) -> tuple[Any, float]:
    """torch.compile (Inductor, frozen weights) warmed on each shape; returns (run, compile s)."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True  # constant-fold weights, prepack convolutions for oneDNN
    run = torch_runner(torch.compile(_Logits(model), dynamic=False), device)
    start = time.perf_counter()
    for shape in shapes:
        run(np.zeros(shape, np.float32))
    return run, time.perf_counter() - start


def bench_size(model, device, size: int, args, work: Path) -> dict[str, Any]:
    """All runtimes at one input size."""
    n_eval, n_calib, batch = (8, 8, 4) if args.smoke else (args.eval_images, args.calib, 64)
    eval_u8, eval_labels = faces(n_eval, size, seed=1, split="test")
    calib = normalise(faces(n_calib, size, seed=2, split="val")[0])
    x = normalise(eval_u8)
    x1, xb = x[:1], x[:batch]
    reps1, repsb = (3, 2) if args.smoke else (30, 3)
    runners: dict[str, Any] = {"eager": torch_runner(_Logits(model), device)}
    res: dict[str, Any] = {"size": size, "batch": batch, "eval_images": n_eval,
                           "calib_images": n_calib}
    if args.compile:
        try:
            runners["compile"], res["compile_s"] = compiled_runner(
                model, device, [x1.shape, xb.shape])
        except Exception as err:  # report, don't hide: Inductor needs a C++ compiler on CPUs
            res["compile_error"] = f"{type(err).__name__}: {str(err)[:300]}"
    fp32 = export_onnx(model, size, work / f"fermixnet_{size}.onnx")
    runners["ort_fp32"] = ort_runner(fp32)
    start = time.perf_counter()
    try:
        int8 = quantize_int8(fp32, calib, work / f"fermixnet_{size}_int8.onnx")
        runners["ort_int8"] = ort_runner(int8)
        res["quantize_s"] = time.perf_counter() - start
    except Exception as err:  # report it; the other runtimes are still measured
        res["int8_error"] = f"{type(err).__name__}: {str(err)[:300]}"
    for name, run in runners.items():
        res[name] = time_runner(run, x1, xb, reps1, repsb)
    logits = {name: logits_of(runners[name], x, batch)
              for name in ("eager", "ort_fp32", "ort_int8") if name in runners}
    pred = {name: value.argmax(1) for name, value in logits.items()}
    res["ort_fp32_max_abs_diff"] = float(np.abs(logits["ort_fp32"] - logits["eager"]).max())
    res["logit_abs_max"] = float(np.abs(logits["eager"]).max())
    res["fp32_accuracy"] = float((pred["ort_fp32"] == eval_labels).mean())
    b1 = {name: res[name]["batch1_ms"] for name in runners}
    bb = {name: res[name][f"batch{batch}_ms"] for name in runners}
    res["ort_fp32_vs_eager_batch1"] = b1["eager"] / b1["ort_fp32"]
    if "ort_int8" in runners:
        res["int8_agreement"] = float((pred["ort_int8"] == pred["ort_fp32"]).mean())
        res["int8_accuracy"] = float((pred["ort_int8"] == eval_labels).mean())
        res["ort_int8_vs_fp32_batch1"] = b1["ort_fp32"] / b1["ort_int8"]
        res[f"ort_int8_vs_fp32_batch{batch}"] = bb["ort_fp32"] / bb["ort_int8"]
    if "compile" in runners:
        res["compile_vs_eager_batch1"] = b1["eager"] / b1["compile"]
    return res


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 224])
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="our checkpoint folder to measure (default: train one briefly)")
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--eval-images", type=int, default=512)
    parser.add_argument("--calib", type=int, default=512, help="int8 calibration images")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    args = parser.parse_args()
    device = setup(args)
    if args.smoke:
        args.sizes, args.train_steps, args.compile = [32], 1, False
    start = time.perf_counter()
    model, source = quick_model(device, min(args.sizes), args.train_steps,
                                batch=4 if args.smoke else 32, checkpoint=args.checkpoint)
    results: dict[str, Any] = {"model": source, "train_s": time.perf_counter() - start}
    model = model.to(memory_format=torch.channels_last)
    with tempfile.TemporaryDirectory(prefix="fermixnet-infer-") as tmp:
        for size in args.sizes:
            results[str(size)] = bench_size(model, device, size, args, Path(tmp))
    finish("inference", args, results, device)


if __name__ == "__main__":
    main()
