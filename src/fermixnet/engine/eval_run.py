"""`evaluate_checkpoint`: evaluate saved weights on data sets (what `fermixnet eval` runs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from fermixnet.engine.datasets import build_test_sets
from fermixnet.engine.distributed import resolve_device
from fermixnet.engine.evaluate import EvalResult, ModelInputs, evaluate, shard_loader
from fermixnet.models.contract import (
    DEFAULT_INPUT_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    META_NAME,
    WEIGHTS_NAME,
)
from fermixnet.run_layout import RunLayout


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint folder, a `model.safetensors` file, or a run folder (its best
    checkpoint, else its last)."""
    path = Path(path)
    run = RunLayout(path)
    for candidate in (run.best, run.last):
        if (candidate / WEIGHTS_NAME).is_file():
            return candidate
    if path.is_file() or (path / WEIGHTS_NAME).is_file():
        return path
    raise FileNotFoundError(f"{path}: no checkpoint (expected {WEIGHTS_NAME} + {META_NAME}, or a "
                            f"run folder with {run.best.relative_to(path)})")


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: Sequence[str],
    *,
    out_dir: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 128,
    workers: int = 2,
    cache_dir: str | Path | None = None,
) -> dict[str, EvalResult]:
    """Evaluate every head of a checkpoint on each data spec's test split and its subsets.

    Args:
        checkpoint: checkpoint folder, `.safetensors` file, or run folder.
        data: specs `name:root[,split=...,key=value]`.
        out_dir: if given, results go to `out_dir/eval/<data set>.json`
            (`RunLayout.eval_json`).
        device: `auto`, `cpu`, `cuda`, `mps`.
        batch_size: images per batch.
        workers: DataLoader workers.
        cache_dir: uint8 image cache folder (default: `$FERMIXNET_CACHE` or `~/.cache/fermixnet`).

    Raises:
        ValueError: the data set's classes differ from the ones the checkpoint was trained on.
        FileNotFoundError: checkpoint or data root missing.
    """
    from fermixnet.models.weights import load_checkpoint

    folder = resolve_checkpoint(checkpoint)
    dev = resolve_device(device)
    model, meta = load_checkpoint(folder, device=str(dev))
    model = model.to(dev).eval()
    classes = tuple(meta.get("classes") or ())
    size = int(meta.get("input_size", DEFAULT_INPUT_SIZE))
    if not data:
        raise ValueError("no data to evaluate on; pass --data <name>:/path/to/data")
    cache = Path(cache_dir) if cache_dir is not None else None  # the data package's default
    try:
        tests = build_test_sets(data, size, classes, cache, key="--data")
    except ValueError as err:
        raise ValueError(f"checkpoint {folder} was trained on classes {list(classes)}: "
                         f"{err}") from None
    results = {}
    inputs = ModelInputs(dev, meta.get("mean", IMAGENET_MEAN), meta.get("std", IMAGENET_STD),
                         amp_dtype=torch.bfloat16 if dev.type == "cuda" else None)
    for t in tests:
        res = evaluate(model, shard_loader(t.dataset, batch_size, workers), inputs, classes,
                       subsets=t.subsets, dataset=t.name)
        if out_dir is not None:
            res.save(RunLayout(Path(out_dir)).eval_json(t.name))
        results[t.name] = res
    return results


def format_results(results: dict[str, EvalResult]) -> str:
    """Plain-text summary: accuracy of each head on each set and subset."""
    lines = []
    for name, res in results.items():
        heads = list(res.heads)
        lines.append(f"{name}: " + ", ".join(
            f"{h} {100 * (res.accuracy(h) or 0):.2f}%" for h in heads)
            + f" (balanced {100 * (res.heads['fused']['overall']['balanced_accuracy'] or 0):.2f}%"
            f", n={res.heads['fused']['overall']['n']})")
        for sub, m in res.heads["fused"]["subsets"].items():
            acc = "–" if m["accuracy"] is None else f"{100 * m['accuracy']:.2f}%"
            lines.append(f"  {sub}: {acc} (n={m['n']})")
    return "\n".join(lines)
