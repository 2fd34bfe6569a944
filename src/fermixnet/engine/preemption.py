"""Stop requests from the scheduler: SIGTERM / SIGUSR1 (and submitit's SIGUSR2) set a flag.

SLURM signals a job before it kills it: SIGTERM on preemption or `scancel` (then SIGKILL after
`KillWait`, 30 s by default), and the signal asked for with `--signal` before the time limit
(submitit asks for SIGUSR2 90 s ahead; job scripts often use SIGUSR1). Acting inside a signal
handler would interrupt an optimiser step half way, so `StopRequest` only records the request; the
training loop checks `requested` at each step boundary, writes its checkpoint and stops.

Under submitit, the signal's previous handler (submitit's: call the task's `checkpoint()` and
requeue it) is not lost: `forward()` calls it once the checkpoint is on disk.

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

import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGUSR1)
"""What SLURM sends before a kill: SIGTERM, and the usual `--signal=USR1@N` of job scripts."""

Handler = Callable[[int, FrameType | None], Any] | int | None


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

    def __enter__(self) -> StopRequest:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
