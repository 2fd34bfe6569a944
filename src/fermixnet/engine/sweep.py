"""Sweep runner: several configs x several seeds, then mean and spread of every metric.

Layout: `OUT/<config name>/seed<k>/` is an ordinary run folder. Finished runs are skipped and
interrupted ones resumed, so a sweep command can simply be started again after a kill.
`OUT/summary.md` and `OUT/summary.csv` hold mean, standard deviation (n-1), min, max and n.
`OUT/sweep.json` lists the planned runs (`fermixnet.engine.sweep_plan`; `sweep --status` names the
ones not yet started). The folder's names are `fermixnet.run_layout.SweepLayout`'s.
The `local` launcher runs the runs one after another in this process; `slurm` (and `submitit-local`,
its stand-in on one machine) submits them as one array job (`fermixnet.engine.sweep_launch`).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fermixnet.engine.distributed import process_rank
from fermixnet.engine.sweep_launch import RunTask, SlurmOptions, submit
from fermixnet.engine.sweep_plan import plan, read_plan, run_dir_of, write_plan
from fermixnet.engine.sweep_status import run_info
from fermixnet.fileio import atomic_write
from fermixnet.run_layout import SweepLayout

__all__ = ["collect", "submit_sweep", "sweep", "write_summary"]


def sweep(
    configs: Sequence[str | Path],
    seeds: Sequence[int],
    out_dir: str | Path,
    overrides: Sequence[str] = (),
    *,
    runner: Callable[..., Any] | None = None,
) -> Path:
    """Run every config with every seed (sequentially, in this process), then write the summary.

    Args:
        configs: YAML recipes.
        seeds: values of `train.seed`.
        out_dir: sweep folder.
        overrides: `key=value` applied to every config (before the seed).
        runner: `fit`-like callable `(cfg, out_dir, resume=...)` (default: `fit`).

    Returns:
        The path of `summary.md`.
    """
    out = Path(out_dir)
    cfgs = plan(configs, seeds, overrides)
    is_main = process_rank() == 0  # under torchrun every rank runs the loop
    if is_main:
        write_plan(out, cfgs)
    task = RunTask(runner)
    for cfg in cfgs:
        task(cfg.to_dict(), str(run_dir_of(out, cfg)))
    names = [c.name for c in cfgs]
    if not is_main:
        return SweepLayout(out).summary_md
    return write_summary(out, order=list(dict.fromkeys(names)))


def submit_sweep(
    configs: Sequence[str | Path],
    seeds: Sequence[int],
    out_dir: str | Path,
    overrides: Sequence[str] = (),
    *,
    cluster: str = "slurm",
    options: Any = None,
    runner: Callable[..., Any] | None = None,
) -> list[Any]:
    """Submit the runs that are neither done nor running as submitit tasks (one array job).

    Resubmitting after a preemption or a failure therefore runs only what is missing; each task
    resumes its run from the last checkpoint. On `cluster="local"` this waits for the tasks.

    Args:
        configs: YAML recipes.
        seeds: values of `train.seed`.
        out_dir: sweep folder (submitit's files go to `OUT/.submitit/`).
        overrides: `key=value` applied to every config (before the seed).
        cluster: `slurm`, or `local` (subprocesses on this machine, same submission path).
        options: `SlurmOptions` (its defaults when None).
        runner: `fit`-like callable run by each task (default: `fit`).

    Returns:
        The submitted submitit jobs (empty when nothing is left to run).
    """
    out = Path(out_dir)
    cfgs = plan(configs, seeds, overrides)
    write_plan(out, cfgs)
    todo = []
    for cfg in cfgs:
        info = run_info(out, str(run_dir_of(Path(), cfg)))
        if info.state in ("done", "running"):
            print(f"[sweep] {info.run}: {info.state}, not submitted", flush=True)
        else:
            todo.append(cfg)
    if not todo:
        return []
    return submit(todo, [run_dir_of(out, c) for c in todo], out, cluster,
                  options or SlurmOptions(), runner=runner)


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
    for run in SweepLayout(out_dir).runs_on_disk():
        if not run.metrics_json.is_file():
            continue
        data = json.loads(run.metrics_json.read_text(encoding="utf-8"))
        if data.get("status") != "complete":
            continue
        per = table.setdefault(run.root.parent.name, {})
        for key, value in _flatten(data).items():
            per.setdefault(key, []).append(float(value))
    return {c: {k: _stats(v) for k, v in m.items()} for c, m in table.items()}


def write_summary(out_dir: str | Path, order: Sequence[str] | None = None) -> Path:
    """Write `summary.md` (mean ± std in %, configs side by side) and `summary.csv`.

    Configs appear in `order`, by default that of the sweep's plan (`sweep.json`).
    """
    out = Path(out_dir)
    stats = collect(out)
    if order is None:
        order = list(dict.fromkeys(Path(r).parts[0] for r in read_plan(out)))
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
    layout = SweepLayout(out)
    atomic_write(layout.summary_csv, buf.getvalue())
    atomic_write(layout.summary_md, "\n".join(lines) + "\n")
    return layout.summary_md
