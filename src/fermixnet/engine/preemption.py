"""Stop requests from the scheduler: SIGTERM / SIGUSR1 (and submitit's SIGUSR2) set a flag.

SLURM signals a job before it kills it: SIGTERM on preemption or `scancel` (then SIGKILL after
`KillWait`, 30 s by default), and the signal asked for with `--signal` before the time limit
(submitit asks for SIGUSR2 90 s ahead; job scripts often use SIGUSR1). Acting inside a signal
handler would interrupt an optimiser step half way, so `StopRequest` only records the request; the
training loop checks `requested` at each step boundary, writes its checkpoint and stops.

Under submitit, the signal's previous handler (submitit's: call the task's `checkpoint()` and
requeue it) is not lost: `forward()` calls it once the checkpoint is on disk.

`fit` raises `TrainingStopped` once the checkpoint is written, and `fermixnet train` exits with
`EXIT_STOPPED` (75, `EX_TEMPFAIL` of sysexits.h: "try again later"), which a job script maps to
`scontrol requeue` (docs/training.md, "Preemption").

Example:
    >>> with StopRequest() as stop:
    ...     for step in steps:
    ...         train(step)
    ...         if stop.requested:
    ...             save_checkpoint()
    ...             stop.forward()  # submitit: requeue; otherwise nothing
    ...             break
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

import torch

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGUSR1)
"""What SLURM sends before a kill: SIGTERM, and the usual `--signal=USR1@N` of job scripts."""

EXIT_STOPPED = 75
"""Exit status of `fermixnet train` (and `sweep`) stopped by a signal with its checkpoint saved:
`EX_TEMPFAIL` of sysexits.h. `--resume` continues the run."""

Handler = Callable[[int, FrameType | None], Any] | int | None


def stop_signals(environ: Mapping[str, str] = os.environ) -> tuple[signal.Signals, ...]:
    """`DEFAULT_SIGNALS`, plus SIGUSR2 inside a submitit task (its timeout/preemption signal;
    submitit exports `SUBMITIT_EXECUTOR`)."""
    if "SUBMITIT_EXECUTOR" in environ:
        return (*DEFAULT_SIGNALS, signal.SIGUSR2)
    return DEFAULT_SIGNALS


class TrainingStopped(Exception):
    """A stop signal ended training at a step boundary; `checkpoints/last` holds the state to
    `--resume` from (mid-epoch when `step > 0`)."""

    def __init__(self, received: signal.Signals | None, epoch: int, step: int,
                 checkpoint: str) -> None:
        where = f"step {step} of epoch {epoch + 1}" if step else f"the end of epoch {epoch}"
        name = received.name if received is not None else "a stop signal (to another process)"
        super().__init__(f"{name} received: stopped at {where}; the checkpoint is {checkpoint}")
        self.received, self.epoch, self.step, self.checkpoint = received, epoch, step, checkpoint


class StopRequest:
    """Context manager that turns the given signals into a "stop requested" flag.

    Args:
        signals: signals to catch (default: SIGTERM and SIGUSR1; add `signal.SIGUSR2` under
            submitit, whose timeout/preemption signal it is).

    Raises:
        RuntimeError: entered outside the main thread (Python delivers signals there only).
    """

    def __init__(self, signals: Sequence[signal.Signals] = DEFAULT_SIGNALS) -> None:
        self.signals = tuple(signals)
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Handler] = {}
        self._frame: FrameType | None = None
        self._group: Any = None

    @property
    def requested(self) -> bool:
        """True once one of the signals arrived."""
        return self.received is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:  # keep the first; a second SIGTERM does not change the plan
            self.received, self._frame = signal.Signals(signum), frame

    def install(self) -> StopRequest:
        """Replace the signals' handlers with the flag setter (keeping the old ones)."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("StopRequest must be installed from the main thread")
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        """Put the previous handlers back."""
        for sig, old in self._previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._previous.clear()

    def forward(self) -> None:
        """Call the previous handler of the received signal (e.g. submitit's requeue), if it
        was a Python function; default and ignored dispositions do nothing here."""
        if self.received is None:
            return
        old = self._previous.get(self.received)
        if callable(old):
            old(int(self.received), self._frame)

    def agreed(self) -> bool:
        """True when a signal reached any process of the job. Under DDP every process must call
        this at the same points: one small all-reduce (MAX) over a CPU (gloo) group, so that
        the check never waits for the GPU."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return self.requested  # one process: no tensor on the per-step path
        flag = torch.tensor([int(self.requested)])
        if self._group is None:  # created on first use, by every process at the same point
            gloo = torch.distributed.get_backend() == "gloo"
            self._group = torch.distributed.group.WORLD if gloo else \
                torch.distributed.new_group(backend="gloo")
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX, group=self._group)
        return bool(flag)

    def __enter__(self) -> StopRequest:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
