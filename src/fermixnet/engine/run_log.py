"""Run-folder metric files: `metrics.csv` and `metrics.json` (rewritten atomically from the full
history each epoch, so they always match the last checkpoint) and TensorBoard events."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from fermixnet.fileio import atomic_write
from fermixnet.run_layout import RunLayout


def json_safe(value: Any) -> Any:
    """NaN and infinities to None, recursively (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write; NaN/inf become null (valid JSON)."""
    atomic_write(path, json.dumps(json_safe(data), indent=1))


class RunLogger:
    """Writes metric files of rank 0; every method is a no-op on other ranks.

    Args:
        out_dir: the run folder.
        enabled: False on ranks other than 0.
        purge_step: global step to resume TensorBoard from (drops events of the lost epoch).
    """

    def __init__(self, out_dir: Path, enabled: bool = True, purge_step: int | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.layout = RunLayout(self.out_dir)
        self.enabled = enabled
        self._tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tb = SummaryWriter(str(self.layout.tensorboard), purge_step=purge_step)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Log scalars to TensorBoard."""
        if self._tb is not None:
            for key, value in values.items():
                if value is not None and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)

    def epoch(self, history: list[dict[str, Any]], summary: dict[str, Any]) -> None:
        """Rewrite `metrics.csv` (one row per epoch) and `metrics.json` (history + summary)."""
        if not self.enabled:
            return
        keys: list[str] = []
        for row in history:
            keys += [k for k in row if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
        atomic_write(self.layout.metrics_csv, buf.getvalue())
        write_json(self.layout.metrics_json, {**summary, "history": history})
        if self._tb is not None:
            last = history[-1]
            step = int(last.get("global_step", last.get("epoch", 0)))
            self.scalars(step, {f"epoch/{k}": float(v) for k, v in last.items()
                                if isinstance(v, (int, float))})
            self._tb.flush()

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None
