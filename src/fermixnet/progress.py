"""Progress on a terminal and in logs: a tqdm bar, or a line at a steady interval.

With a terminal on standard error, `progress_bar` returns a tqdm bar. Without one (output sent to
a file, a SLURM log, a pipe), a bar would write nothing readable until it ends, so it returns a
`LogProgress`, which prints one line at a steady interval, as the `MetricLogger` of torchvision's
reference scripts does::

    epoch 3: 120/500 (24%) loss=0.4321 acc=0.812 img_s=456 | 2.10 it/s, elapsed 0:00:57, eta 0:03:01

The interval is `FERMIXNET_PROGRESS_EVERY`: `30s` (the default) for every 30 seconds, or a plain
number such as `200` for every 200 steps. Both expose tqdm's `update`, `set_postfix`, `close` and
iteration, so a loop is written once for both.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

ENV_EVERY = "FERMIXNET_PROGRESS_EVERY"
DEFAULT_EVERY = "30s"


def parse_every(text: str) -> tuple[float | None, int | None]:
    """`"30s"` -> (30.0, None) seconds; `"200"` -> (None, 200) steps.

    Raises:
        ValueError: anything else, or a value that is not positive.
    """
    t = text.strip().lower()
    try:
        seconds, steps = (float(t[:-1]), None) if t.endswith("s") else (None, int(t))
    except ValueError:
        seconds = steps = None
    if (seconds is None and steps is None) or (seconds or steps or 0) <= 0:
        raise ValueError(f"{ENV_EVERY}={text!r}: expected seconds like 30s or a step count "
                         "like 200 (both > 0)")
    return seconds, steps


def _clock_text(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class LogProgress:
    """Progress as plain lines at a steady interval (for logs; see the module docstring).

    Args:
        iterable: what to iterate over (optional; call `update` otherwise).
        total: expected number of steps (None: no percentage and no ETA).
        desc: what is progressing, e.g. `epoch 3`.
        unit: what a step is, for the rate (`it`, `img`).
        every: `30s` or `200` (default: `$FERMIXNET_PROGRESS_EVERY`, else `30s`).
        file: where lines go (default: standard error).
        clock: seconds since some origin (tests pass a fake clock).
        disable: print nothing.
    """

    def __init__(self, iterable: Iterable[Any] | None = None, total: int | None = None,
                 desc: str = "", unit: str = "it", every: str | None = None,
                 file: IO[str] | None = None, clock: Callable[[], float] = time.monotonic,
                 disable: bool = False) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.every_s, self.every_n = parse_every(every or os.environ.get(ENV_EVERY)
                                                 or DEFAULT_EVERY)
        self.file, self.clock, self.disable = file, clock, disable
        self.n, self.postfix = 0, ""
        self.start = self._last = clock()

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("LogProgress without an iterable: call update() instead")
        for item in self.iterable:
            yield item
            self.update(1)

    def set_postfix(self, **values: Any) -> None:
        """Values shown after the counts, e.g. `loss=0.4321` (formatted by the caller)."""
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def update(self, n: int = 1) -> None:
        """Count `n` more steps; print a line when the interval has passed."""
        before, self.n = self.n, self.n + n
        if self.disable:
            return
        if self.every_n is not None:
            due = self.n // self.every_n > before // self.every_n
        else:
            due = self.clock() - self._last >= self.every_s
        if due:
            self._last = self.clock()
            print(self.line(), file=self.file or sys.stderr, flush=True)

    def line(self) -> str:
        """The progress line for the current count."""
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = self.n / elapsed
        head = f"{self.desc}: {self.n}" if self.desc else str(self.n)
        if self.total:
            head += f"/{self.total} ({100 * self.n / self.total:.0f}%)"
        tail = f"{rate:.2f} {self.unit}/s, elapsed {_clock_text(elapsed)}"
        if self.total and rate > 0:
            tail += f", eta {_clock_text(max(self.total - self.n, 0) / rate)}"
        return f"{head} {self.postfix} | {tail}" if self.postfix else f"{head} | {tail}"

    def close(self) -> None:
        """Nothing to tidy up (tqdm's interface)."""


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None,
                 desc: str = "", unit: str = "it", disable: bool = False,
                 file: IO[str] | None = None, **tqdm_kwargs: Any) -> Any:
    """A tqdm bar when `file` (default: standard error) is a terminal, else a `LogProgress`.

    Args:
        iterable: what to iterate over (optional).
        total: expected number of steps.
        desc: label of the bar or line.
        unit: what a step is.
        disable: show nothing (e.g. on ranks other than 0).
        file: the stream.
        **tqdm_kwargs: passed to tqdm only (e.g. `leave=False`).
    """
    stream = file or sys.stderr
    isatty = getattr(stream, "isatty", None)
    if not disable and isatty is not None and isatty():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, **tqdm_kwargs)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, file=file, disable=disable)
