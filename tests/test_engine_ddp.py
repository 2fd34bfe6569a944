"""The training command under `torchrun` with two CPU processes (gloo, DistributedSampler,
rank-0-only writing, sharded evaluation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, make_manifest, tiny_config):
    root = make_manifest(tmp_path / "data", per_class=4, test_per_class=2)
    cfg = tiny_config(tmp_path, root, epochs=2)
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node=2", "-m", "fermixnet.cli", "train", "--config", str(cfg),
           "--out", str(run)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch 2/2") == 1 and proc.stdout.count("run folder") == 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "complete" and len(metrics["history"]) == 2
    # 21 training images, global batch 8 = 4 per process: 2 steps per process and epoch.
    assert [h["global_step"] for h in metrics["history"]] == [2, 4]
    ev = json.loads((run / "eval" / "data-last.json").read_text())
    assert ev["heads"]["fused"]["overall"]["n"] == 14  # each test image counted exactly once
    assert len(list((run / "tensorboard").glob("events.*"))) == 1
    assert not list((run / "checkpoints").glob(".*"))  # no temporaries left
