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
