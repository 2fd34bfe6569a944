"""Sweep runner: several configs x several seeds, then mean and spread of every metric.

Layout: `OUT/<config name>/seed<k>/` is an ordinary run folder. Finished runs are skipped and
interrupted ones resumed, so a sweep command can simply be started again after a kill.
`OUT/summary.md` and `OUT/summary.csv` hold mean, standard deviation (n-1), min, max and n.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fermixnet.config import load_config
from fermixnet.engine.checkpoint import is_complete
from fermixnet.fileio import atomic_write


def run_status(run_dir: Path) -> str:
    """`complete`, `partial` (has a checkpoint to resume) or `new`."""
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        try:
            if json.loads(metrics.read_text(encoding="utf-8")).get("status") == "complete":
                return "complete"
        except json.JSONDecodeError:
            pass
    ckpts = run_dir / "checkpoints"
    if is_complete(ckpts / "last") or is_complete(ckpts / ".old-last"):
        return "partial"
    return "new"


def sweep(
    configs: Sequence[str | Path],
    seeds: Sequence[int],
    out_dir: str | Path,
    overrides: Sequence[str] = (),
    *,
    runner: Callable[..., Any] | None = None,
) -> Path:
    """Run every config with every seed (sequentially), then write the summary.

    Args:
        configs: YAML recipes.
        seeds: values of `train.seed`.
        out_dir: sweep folder.
        overrides: `key=value` applied to every config (before the seed).
        runner: `fit`-like callable `(cfg, out_dir, resume=...)` (default: `fit`).

    Returns:
        The path of `summary.md`.
    """
    if runner is None:
        from fermixnet.engine.trainer import fit as runner
    if not configs or not seeds:
        raise ValueError("a sweep needs at least one config and one seed")
    out = Path(out_dir)
    cfgs = [load_config(c, [*overrides, f"train.seed={s}"]) for c in configs for s in seeds]
    names = [c.name for c in cfgs]
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun every rank runs the loop
    for cfg in cfgs:
        run_dir = out / cfg.name / f"seed{cfg.train.seed}"
        status = run_status(run_dir)
        if is_main:
            print(f"[sweep] {cfg.name} seed {cfg.train.seed}: {status}", flush=True)
        if status != "complete":
            runner(cfg, run_dir, resume=status == "partial")
    return write_summary(out, order=list(dict.fromkeys(names))) if is_main else out / "summary.md"


def _flatten(metrics: dict[str, Any]) -> dict[str, float]:
    """Numbers of a run's `metrics.json` worth averaging, keyed by a readable name."""
    flat: dict[str, float] = {}
    if metrics.get("best_val") is not None:
        flat["val best"] = metrics["best_val"]
    for test, by_weights in metrics.get("test", {}).items():
        for which, m in by_weights.items():
            for key in ("accuracy", "balanced_accuracy"):
                if m.get(key) is not None:
                    flat[f"{test} {key} ({which})"] = m[key]
            for head, v in m.get("heads", {}).items():
                if head != "fused" and v is not None:
                    flat[f"{test} {head} head ({which})"] = v
            for sub, v in m.get("subsets", {}).items():
                if v is not None:
                    flat[f"{test} {sub} ({which})"] = v
    return flat


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def collect(out_dir: Path) -> dict[str, dict[str, dict[str, float]]]:
    """config name -> metric -> statistics over the completed seeds."""
    table: dict[str, dict[str, list[float]]] = {}
    for metrics in sorted(Path(out_dir).glob("*/seed*/metrics.json")):
        data = json.loads(metrics.read_text(encoding="utf-8"))
        if data.get("status") != "complete":
            continue
        per = table.setdefault(metrics.parent.parent.name, {})
        for key, value in _flatten(data).items():
            per.setdefault(key, []).append(float(value))
    return {c: {k: _stats(v) for k, v in m.items()} for c, m in table.items()}


def write_summary(out_dir: str | Path, order: Sequence[str] | None = None) -> Path:
    """Write `summary.md` (mean ± std in %, configs side by side) and `summary.csv`."""
    out = Path(out_dir)
    stats = collect(out)
    configs = [c for c in (order or []) if c in stats] + sorted(set(stats) - set(order or []))
    metrics: list[str] = []
    for c in configs:
        metrics += [m for m in stats[c] if m not in metrics]
    lines = ["# Sweep summary", "", "Accuracy in %, mean ± std over seeds (n in brackets).", "",
             "| metric | " + " | ".join(configs) + " |", "|---|" + "---|" * len(configs)]
    for m in metrics:
        cells = []
        for c in configs:
            s = stats[c].get(m)
            cells.append("–" if s is None else
                         f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f} ({s['n']})")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["config", "metric", "mean", "std", "min", "max", "n"])
    for c in configs:
        for m, s in stats[c].items():
            w.writerow([c, m, s["mean"], s["std"], s["min"], s["max"], s["n"]])
    atomic_write(out / "summary.csv", buf.getvalue())
    atomic_write(out / "summary.md", "\n".join(lines) + "\n")
    return out / "summary.md"
