"""Smoke test of the benchmark suite: every script runs in --smoke mode and writes valid JSON.

Nothing here times anything or compares speeds: the numbers depend on the machine.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


@pytest.mark.slow
def test_run_all_smoke_writes_results_and_table(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--smoke", "--out", str(out)],
        capture_output=True, text=True, env=_env(), timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["smoke"] is True
    assert set(data["scripts"]) == {"train", "loader", "inference", "predict", "memory"}
    for name, script in data["scripts"].items():
        assert "error" not in script, (name, script.get("error"))
        assert script["name"] == name and script["smoke"] is True
        assert script["machine"]["torch"] == torch.__version__
    train = data["scripts"]["train"]["results"]
    assert train["train_overhead"] > 0 and math.isfinite(train["train_flop_efficiency"])
    assert train["gflop_per_step"] > 0
    memory = data["scripts"]["memory"]["results"]
    assert all(memory[k]["peak_rss_mib"] > 0 for k in ("baseline", "train", "predict"))
    statuses = {row["status"] for row in data["table"]}
    assert statuses <= {"PASS", "MISS", "-", "n/a"}
    assert "| metric | value | target | status |" in proc.stdout
    assert "train_overhead" in proc.stdout


def test_random_flip_crop_takes_a_window_of_the_padded_image() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from device_loader import random_flip_crop
    finally:
        sys.path.remove(str(BENCH))
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, 3, 10, 14), dtype=torch.uint8, generator=gen)
    pad = 2
    y = random_flip_crop(x, pad, gen)
    assert y.shape == x.shape and y.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (pad,) * 4)
    flips = 0
    for i in range(len(x)):
        windows = [padded[i, :, a : a + 10, b : b + 14] for a in range(5) for b in range(5)]
        plain = any(torch.equal(w, y[i]) for w in windows)
        flipped = any(torch.equal(w.flip(-1), y[i]) for w in windows)
        assert plain or flipped, i
        flips += flipped and not plain
    assert 0 < flips < len(x)  # both outcomes occur with this seed
