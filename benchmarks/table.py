"""The summary table of `run_all.py`: one row per measured quantity, its target and pass/miss."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Row = dict[str, str]


def get(results: dict[str, Any], script: str, *keys: str) -> Any:
    """``results[script]["results"][k1][k2]...`` or None where any level is missing."""
    node: Any = results.get(script, {}).get("results")
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def row(metric: str, value: Any, fmt: Callable[[Any], str], target: str = "",
        ok: Callable[[Any], bool] | None = None) -> Row:
    """One table row; ``status`` is PASS/MISS against ``ok``, ``-`` without a target, ``n/a``
    when the value is missing (the script failed or was skipped)."""
    if value is None:
        return {"metric": metric, "value": "n/a", "target": target, "status": "n/a"}
    status = "-" if ok is None else ("PASS" if ok(value) else "MISS")
    return {"metric": metric, "value": fmt(value), "target": target, "status": status}


def _x(v: float) -> str:
    return f"{v:.2f}x"


def _train_rows(r: dict[str, Any]) -> list[Row]:
    size, batch = get(r, "train", "size"), get(r, "train", "batch_main")
    at = f"{size} px, B={batch}" if size else ""
    eff = get(r, "train", "train_flop_efficiency")
    gflops = get(r, "train", "achieved_gflops")
    ceiling = get(r, "train", "matmul_gflops", "ceiling")
    eff_text = (lambda v: f"{v:.2f} ({gflops:.0f} of {ceiling:.0f} GFLOP/s)") if ceiling else str
    return [
        row(f"train_overhead: co-training step / plain step on 2B images ({at})",
            get(r, "train", "train_overhead"), lambda v: f"{v:.3f}", "<= 1.05",
            lambda v: v <= 1.05),
        row(f"train_flop_efficiency: counted FLOP/s / matmul ceiling ({at})", eff, eff_text,
            ">= 0.70", lambda v: v >= 0.70),
        row(f"training throughput, main images/s ({at}, + B mixed)",
            get(r, "train", "train_images_per_s"), lambda v: f"{v:.1f}"),
    ]


def _loader_rows(r: dict[str, Any]) -> list[Row]:
    best = get(r, "loader", "best_cache_images_per_s")
    pil = get(r, "loader", "best_pil_images_per_s")
    batched = get(r, "loader", "cache_batched")
    return [
        row(f"loader: cache + per-sample uint8 transforms / training throughput "
            f"({best or 0:.0f} images/s)", get(r, "loader", "cache_vs_train"), _x, ">= 10x",
            lambda v: v >= 10),
        row(f"loader: cache / per-sample PIL decoding ({pil or 0:.0f} images/s)",
            get(r, "loader", "cache_vs_pil"), _x, ">= 3x", lambda v: v >= 3),
        row(f"loader: cache, batched gather + augmentation ({batched or 0:.0f} images/s) / PIL",
            get(r, "loader", "batched_vs_pil"), _x),
    ]


def _sizes(r: dict[str, Any]) -> list[str]:
    """Input sizes the inference benchmark measured, smallest first."""
    res = r.get("inference", {}).get("results", {})
    return sorted((k for k in res if k.isdigit()), key=int) or ["112"]


def _inference_summary(r: dict[str, Any]) -> list[Row]:
    sizes = _sizes(r)
    small = sizes[0]
    rows = [
        row(f"ONNX Runtime fp32 / eager PyTorch, batch 1, {small} px",
            get(r, "inference", small, "ort_fp32_vs_eager_batch1"), _x, ">= 1.5x",
            lambda v: v >= 1.5),
        row(f"ONNX Runtime fp32 max abs logit difference from eager, {small} px",
            get(r, "inference", small, "ort_fp32_max_abs_diff"), lambda v: f"{v:.1e}", "< 1e-4",
            lambda v: v < 1e-4),
    ]
    for size in sizes:
        batch = get(r, "inference", size, "batch") or 64
        rows += [
            row(f"ONNX Runtime int8 / fp32, batch 1, {size} px",
                get(r, "inference", size, "ort_int8_vs_fp32_batch1"), _x, ">= 2x",
                lambda v: v >= 2),
            row(f"ONNX Runtime int8 / fp32, batch {batch}, {size} px",
                get(r, "inference", size, f"ort_int8_vs_fp32_batch{batch}"), _x, ">= 2x",
                lambda v: v >= 2),
            row(f"int8 predictions agreeing with fp32, {size} px",
                get(r, "inference", size, "int8_agreement"), lambda v: f"{100 * v:.1f} %",
                ">= 99 %", lambda v: v >= 0.99),
        ]
    rows.append(row(f"torch.compile / eager, batch 1, {small} px",
                    get(r, "inference", small, "compile_vs_eager_batch1"), _x))
    return rows


def summary_rows(r: dict[str, Any]) -> list[Row]:
    """All summary rows from `run_all`'s per-script results."""
    found = get(r, "predict", "photos_with_a_face")
    photos = get(r, "predict", "photos")
    detector = get(r, "predict", "detector")
    mem_train = get(r, "memory", "train", "peak_rss_mib")
    mem_size, mem_batch = get(r, "memory", "train", "size"), get(r, "memory", "train", "batch_main")
    return [
        *_train_rows(r),
        *_loader_rows(r),
        *_inference_summary(r),
        row(f"predict end to end, photos/s (512 px, {detector}, faces found in {found}/{photos})",
            get(r, "predict", "photos_per_s"), lambda v: f"{v:.1f}"),
        row(f"peak memory, training ({mem_size} px, B={mem_batch} + {mem_batch} mixed)",
            mem_train, lambda v: f"{v / 1024:.2f} GiB", "< 4 GiB", lambda v: v < 4096),
        row("peak memory, predict", get(r, "memory", "predict", "peak_rss_mib"),
            lambda v: f"{v / 1024:.2f} GiB"),
        row("peak memory, imports only (included above)",
            get(r, "memory", "baseline", "peak_rss_mib"), lambda v: f"{v / 1024:.2f} GiB"),
    ]


def inference_rows(r: dict[str, Any]) -> list[Row]:
    """Latency table: one row per size and runtime."""
    rows = []
    for size in _sizes(r):
        res = get(r, "inference", size)
        if not res:
            continue
        batch = res.get("batch", 64)
        for name in ("eager", "compile", "ort_fp32", "ort_int8"):
            if name not in res:
                continue
            t = res[name]
            rows.append({
                "size": f"{size} px", "runtime": name,
                "batch 1 ms": f"{t['batch1_ms']:.2f}",
                "batch 1 images/s": f"{t['batch1_images_per_s']:.0f}",
                f"batch {batch} ms": f"{t[f'batch{batch}_ms']:.0f}",
                f"batch {batch} images/s": f"{t[f'batch{batch}_images_per_s']:.0f}",
            })
    return rows


def to_markdown(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """A Markdown table of ``rows`` with ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
