"""`fermixnet sweep --status`: which runs of a sweep are done, running, stopped, failed or pending.

A run's state comes from its folder alone (so it works for every launcher): `metrics.json` with
status `complete` is done; otherwise `task.json` (written by `RunTask`) says running, failed
(with the error and the last lines of the task's log) or requeued. A task recorded as running whose
process is gone (killed, preempted, node lost) is `stopped`: resubmitting the sweep resumes it from
its last checkpoint. Liveness is checked by pid on the same host and through SLURM's accounting
(`sacct`, via submitit) for tasks on other hosts.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fermixnet.engine.run_state import run_status
from fermixnet.engine.sweep_plan import read_plan
from fermixnet.run_layout import RunLayout, SweepLayout

LOG_LINES = 8
"""Lines of a failed task's log shown by `sweep --status`."""
_ALIVE = {"RUNNING", "PENDING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED"}


@dataclass
class RunInfo:
    """The state of one run of a sweep."""

    run: str
    """Run folder relative to the sweep folder (`<config>/seed<k>`)."""
    state: str
    """done, running, stopped, failed or pending."""
    detail: str = ""
    log_tail: list[str] = field(default_factory=list)


def _read_task(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(RunLayout(run_dir).task.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _job_alive(rec: dict[str, Any], sweep_dir: Path) -> bool | None:
    """Is the recorded task still alive? None when it cannot be told from here."""
    requeued = rec.get("state") == "requeued"  # its pid is gone, its job waits in the queue
    if not requeued and rec.get("host") == socket.gethostname() and rec.get("pid"):
        return _pid_alive(int(rec["pid"]))
    job = rec.get("job_id")
    if not job:
        return None
    try:
        import submitit

        state = submitit.SlurmJob(folder=SweepLayout(sweep_dir).submitit / "%j", job_id=job).state
    except Exception:  # no submitit, no sacct, or not a SLURM job id
        return None
    return state.split()[0].upper() in _ALIVE if state != "UNKNOWN" else None


def _tail(paths: list[str], n: int = LOG_LINES) -> list[str]:
    """Last `n` non-empty lines of the first log (stderr first) that has any."""
    for p in reversed(paths):
        try:
            lines = [ln for ln in Path(p).read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            continue
        if lines:
            return lines[-n:]
    return []


def run_info(sweep_dir: Path, rel: str) -> RunInfo:
    """The state of the run `sweep_dir/rel`."""
    run_dir = sweep_dir / rel
    disk = run_status(run_dir)
    if disk == "complete":
        return RunInfo(rel, "done")
    rec = _read_task(run_dir)
    resumable = "resumes from its last checkpoint" if disk == "partial" else "starts again"
    if rec is None:
        state = "stopped" if disk == "partial" else "pending"
        return RunInfo(rel, state, "" if state == "pending" else f"not running; {resumable}")
    where = f"job {rec.get('job_id') or '-'} on {rec.get('host', '?')}, pid {rec.get('pid', '?')}"
    if rec["state"] == "failed":
        return RunInfo(rel, "failed", f"{rec.get('error', '')} ({where})",
                       _tail(rec.get("log", [])))
    if rec["state"] in ("running", "requeued"):
        alive = _job_alive(rec, sweep_dir)
        if alive is None:
            return RunInfo(rel, "running", f"{where} (liveness unknown from this host)")
        if alive:
            return RunInfo(rel, "running", where)
    return RunInfo(rel, "stopped", f"{where} ended before the run finished; {resumable}",
                   _tail(rec.get("log", [])))


def sweep_status(sweep_dir: str | Path) -> list[RunInfo]:
    """States of every planned run of a sweep folder.

    Raises:
        FileNotFoundError: `sweep_dir` does not exist.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: no such sweep folder")
    return [run_info(sweep_dir, rel) for rel in read_plan(sweep_dir)]


def format_status(infos: list[RunInfo]) -> str:
    """A count per state, then one line per run that is not done (log tails indented)."""
    counts: dict[str, int] = {}
    for i in infos:
        counts[i.state] = counts.get(i.state, 0) + 1
    lines = [", ".join(f"{n} {s}" for s, n in counts.items()) or "no runs"]
    for i in infos:
        if i.state != "done":
            lines.append(f"  {i.state:8s} {i.run}  {i.detail}".rstrip())
            lines += [f"      | {ln}" for ln in i.log_tail]
    return "\n".join(lines)
