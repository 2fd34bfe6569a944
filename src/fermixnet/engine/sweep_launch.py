"""Sweep runs as submitit tasks: one SLURM array job per sweep, one task per (config, seed).

We write no scheduler: `submitit` (the launcher of DeiT and ConvNeXt, and Hydra's submitit plugin)
turns the runs into one `sbatch --array=0-N%P` job on SLURM, or, with `cluster="local"`, into
subprocesses on this machine through the same submission path (pickled task, per-task logs).

A task is `RunTask(cfg_dict, run_dir)`: it skips a finished run, resumes a half-done one from
`checkpoints/last` and otherwise trains it; a run folder is the same as with the local launcher.
`RUN/task.json` records the task's state, job id, host, pid and log files for `sweep --status`.
On SLURM's timeout or preemption signal submitit calls `RunTask.checkpoint`, which requeues the
same task; the requeued task resumes the run from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fermixnet.config import Config
from fermixnet.engine.distributed import process_rank
from fermixnet.engine.run_log import write_json
from fermixnet.engine.run_state import run_status
from fermixnet.run_layout import RunLayout, SweepLayout

CLUSTERS = ("slurm", "local")
"""submitit clusters: `slurm`, or `local` (subprocesses on this machine, same submission path)."""


@dataclass
class SlurmOptions:
    """Resources of each array task (the `sbatch` options submitit writes)."""

    partition: str | None = None
    """`--partition` (the cluster's default when None)."""
    time_min: int = 24 * 60
    """Time limit per task in minutes (`--time`)."""
    gpus_per_task: int = 1
    """GPUs per task (one run per task)."""
    cpus_per_task: int = 8
    """CPU cores per task (data loading workers + main process)."""
    mem_gb: float | None = None
    """Memory per task in GB (the partition's default when None)."""
    parallelism: int = 16
    """Tasks running at the same time (`--array=0-N%P`)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Further `sbatch` options, e.g. `{"account": "lab", "qos": "high"}`."""

    def __post_init__(self) -> None:
        for name in ("time_min", "parallelism"):
            if getattr(self, name) < 1:
                raise ValueError(f"slurm {name} must be >= 1, got {getattr(self, name)}")
        for name in ("gpus_per_task", "cpus_per_task"):
            if getattr(self, name) < 0:
                raise ValueError(f"slurm {name} must be >= 0, got {getattr(self, name)}")


def parse_time(text: str) -> int:
    """Minutes of a SLURM time limit: `90`, `1:30:00`, `2-00:00:00` or `2-12`.

    Raises:
        ValueError: another format.
    """
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        raise ValueError(f"--time {text!r}: expected minutes, HH:MM:SS or D-HH:MM:SS")
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        return days * 1440 + a * 60 + (b or 0) + (1 if c else 0)
    if b is None:
        return a  # minutes
    if c is None:
        return a + (1 if b else 0)  # MM:SS, rounded up
    return a * 60 + b + (1 if c else 0)  # HH:MM:SS


def _log_paths() -> list[str]:
    """This submitit task's stdout and stderr files (empty outside submitit)."""
    if "SUBMITIT_EXECUTOR" not in os.environ:
        return []
    import submitit

    paths = submitit.JobEnvironment().paths
    return [str(paths.stdout), str(paths.stderr)]


def _job_id() -> str | None:
    if "SUBMITIT_EXECUTOR" not in os.environ:
        return None
    import submitit

    return submitit.JobEnvironment().job_id


def _requeued(run_dir: Path) -> bool:
    try:
        task = RunLayout(run_dir).task
        return json.loads(task.read_text(encoding="utf-8"))["state"] == "requeued"
    except (OSError, ValueError, KeyError):
        return False


class RunTask:
    """One run of a sweep; the callable that submitit pickles and the local launcher calls.

    Args:
        runner: `fit`-like callable `(cfg, out_dir, resume=...)` (default: `fit`).
    """

    def __init__(self, runner: Callable[..., Any] | None = None) -> None:
        self.runner = runner

    def __call__(self, cfg_dict: dict[str, Any], run_dir: str) -> str:
        """Skip, resume or start the run; returns the run's status before the call."""
        cfg, out = Config.from_dict(cfg_dict), Path(run_dir)
        status = run_status(out)
        main = process_rank() == 0
        if main:
            print(f"[sweep] {cfg.name} seed {cfg.train.seed}: {status}"
                  + {"partial": ", resuming", "new": ", starting"}.get(status, ", skipped"),
                  flush=True)
        if status == "complete":
            return status
        runner = self.runner
        if runner is None:
            from fermixnet.engine.trainer import fit as runner
        record = {"state": "running", "job_id": _job_id(), "host": socket.gethostname(),
                  "pid": os.getpid(), "log": _log_paths(), "started": time.time()}
        if main:
            out.mkdir(parents=True, exist_ok=True)
            write_json(RunLayout(out).task, record)
        try:
            runner(cfg, out, resume=status == "partial")
        except BaseException as err:
            if main and not _requeued(out):  # submitit's requeue exits through here
                from fermixnet.engine.preemption import TrainingStopped

                failed = isinstance(err, Exception) and not isinstance(err, TrainingStopped)
                state = "failed" if failed else "stopped"
                write_json(RunLayout(out).task, {**record, "state": state,
                                             "error": f"{type(err).__name__}: {err}"})
            raise
        if main:
            write_json(RunLayout(out).task, {**record, "state": "done", "ended": time.time()})
        return status

    def checkpoint(self, cfg_dict: dict[str, Any], run_dir: str) -> Any:
        """submitit's preemption/timeout hook: requeue the same task (it resumes from disk)."""
        from submitit.helpers import DelayedSubmission

        task = RunLayout(run_dir).task
        if process_rank() == 0 and task.parent.is_dir():
            write_json(task, {"state": "requeued", "job_id": _job_id(), "host":
                              socket.gethostname(), "pid": os.getpid(), "log": _log_paths()})
        return DelayedSubmission(self, cfg_dict, run_dir)


def make_executor(cluster: str, folder: Path, opts: SlurmOptions, name: str) -> Any:
    """A submitit executor with the options of `opts` (imports submitit, the `cluster` extra).

    Raises:
        ValueError: an unknown cluster, or submitit is not installed.
    """
    if cluster not in CLUSTERS:
        raise ValueError(f"unknown submitit cluster {cluster!r}; expected one of {CLUSTERS}")
    try:
        import submitit
    except ImportError:
        raise ValueError("--launcher slurm needs submitit: pip install 'fermixnet[cluster]'"
                         ) from None
    executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=cluster)
    params: dict[str, Any] = dict(
        name=name, timeout_min=opts.time_min, nodes=1, tasks_per_node=1,
        cpus_per_task=opts.cpus_per_task, gpus_per_node=opts.gpus_per_task,
        slurm_array_parallelism=opts.parallelism, slurm_additional_parameters=dict(opts.extra))
    if opts.partition:
        params["slurm_partition"] = opts.partition
    if opts.mem_gb is not None:
        params["mem_gb"] = opts.mem_gb
    executor.update_parameters(**params)
    return executor


def submit(
    cfgs: Sequence[Config],
    run_dirs: Sequence[Path],
    out_dir: Path,
    cluster: str,
    opts: SlurmOptions,
    *,
    runner: Callable[..., Any] | None = None,
) -> list[Any]:
    """Submit one task per run: one array job on SLURM; on `local`, at most
    `opts.parallelism` subprocesses at a time (submitit's local executor has no arrays),
    waiting until all have ended.

    Returns:
        The submitit jobs, in the order of `cfgs`.
    """
    executor = make_executor(cluster, SweepLayout(out_dir).submitit, opts,
                             name=f"fermixnet-sweep-{Path(out_dir).name}")
    task = RunTask(runner)
    args = [c.to_dict() for c in cfgs], [str(d) for d in run_dirs]
    if cluster == "slurm":
        return executor.map_array(task, *args)
    jobs: list[Any] = []
    pending = list(zip(*args, strict=True))
    while pending or any(not j.done() for j in jobs):
        running = sum(not j.done() for j in jobs)
        while pending and running < opts.parallelism:
            jobs.append(executor.submit(task, *pending.pop(0)))
            running += 1
        time.sleep(0.2)
    return jobs
