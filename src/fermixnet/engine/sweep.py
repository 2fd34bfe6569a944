"""Sweep runner: several configs x several seeds, then mean and spread of every metric.

Layout: `OUT/<config name>/seed<k>/` is an ordinary run folder. Finished runs are skipped and
interrupted ones resumed, so a sweep command can simply be started again after a kill.
`OUT/summary.md` and `OUT/summary.csv` hold mean, standard deviation (n-1), min, max and n.
`OUT/sweep.json` lists the planned runs (so `sweep --status` can name the ones not yet started).
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

from fermixnet.config import Config, load_config
from fermixnet.engine.checkpoint import is_complete
from fermixnet.engine.distributed import process_rank
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


PLAN_FILE = "sweep.json"


def run_dir_of(out_dir: Path, cfg: Config) -> Path:
    """The run folder of one (config, seed) of a sweep."""
    return Path(out_dir) / cfg.name / f"seed{cfg.train.seed}"


def plan(
    configs: Sequence[str | Path], seeds: Sequence[int], overrides: Sequence[str] = ()
) -> list[Config]:
    """Every config with every seed, validated before any work starts.

    Raises:
        ValueError: no config or no seed, a bad config, or two configs with the same name.
    """
    if not configs or not seeds:
        raise ValueError("a sweep needs at least one config and one seed")
    cfgs = [load_config(c, [*overrides, f"train.seed={s}"]) for c in configs for s in seeds]
    seen: dict[tuple[str, int], str] = {}
    for path, cfg in zip([c for c in configs for _ in seeds], cfgs, strict=True):
        key = (cfg.name, cfg.train.seed)
        if key in seen and seen[key] != str(path):
            raise ValueError(f"configs {seen[key]} and {path} share the name {cfg.name!r}; "
                             "their runs would share a folder (set `name:` in one of them)")
        seen[key] = str(path)
    return cfgs


def write_plan(out_dir: Path, cfgs: Sequence[Config]) -> None:
    """Record the planned run folders in `OUT/sweep.json` (added to those of earlier calls)."""
    path = Path(out_dir) / PLAN_FILE
    runs = read_plan(out_dir)
    runs += [r for r in (str(run_dir_of(Path(), c)) for c in cfgs) if r not in runs]
    atomic_write(path, json.dumps({"runs": runs}, indent=1))


def read_plan(out_dir: Path) -> list[str]:
    """Run folders (relative to the sweep folder) planned so far, or those found on disk."""
    path = Path(out_dir) / PLAN_FILE
    if path.is_file():
        try:
            return list(json.loads(path.read_text(encoding="utf-8"))["runs"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a sweep plan ({err})") from None
    return sorted(str(p.relative_to(out_dir)) for p in Path(out_dir).glob("*/seed*")
                  if p.is_dir())


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
    from fermixnet.engine.sweep_launch import RunTask

    out = Path(out_dir)
    cfgs = plan(configs, seeds, overrides)
    is_main = process_rank() == 0  # under torchrun every rank runs the loop
    if is_main:
        write_plan(out, cfgs)
    task = RunTask(runner)
    for cfg in cfgs:
        task(cfg.to_dict(), str(run_dir_of(out, cfg)))
    names = [c.name for c in cfgs]
    return write_summary(out, order=list(dict.fromkeys(names))) if is_main else out / "summary.md"


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
    from fermixnet.engine.sweep_launch import SlurmOptions, submit
    from fermixnet.engine.sweep_status import run_info

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
    for metrics in sorted(Path(out_dir).glob("*/seed*/metrics.json")):
        data = json.loads(metrics.read_text(encoding="utf-8"))
        if data.get("status") != "complete":
            continue
        per = table.setdefault(metrics.parent.parent.name, {})
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
    atomic_write(out / "summary.csv", buf.getvalue())
    atomic_write(out / "summary.md", "\n".join(lines) + "\n")
    return out / "summary.md"
