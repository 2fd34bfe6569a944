"""Smoke test of benchmarks/serve_bench.py: the CLI server answers every request of the old
path (/api/predict, one worker) and of the live path (/api/frame), no timing.
The ONNX Runtime backend is left out here (its export takes long on 2 cores); the API tests
serve an exported model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_serve_bench_smoke(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    out = tmp_path / "serve.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "serve_bench.py"), "--smoke", "--out", str(out),
         "--backends", "torch"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    for mode in ("before", "after"):
        for clients in ("1", "2"):
            r = results["torch"][mode][clients]
            assert r["requests"] == 6 and r["failed"] == 0, r
            assert 0 < r["p50_ms"] <= r["p95_ms"] and r["requests_per_s"] > 0
    after = results["torch"]["after"]["2"]
    assert after["ratio_requests_per_s"] == pytest.approx(
        after["requests_per_s"] / results["torch"]["before"]["2"]["requests_per_s"])
    assert "onnxruntime" not in results and "int8" not in results
    assert "before req/s" in proc.stderr and "torch" in proc.stderr


def test_frames_bench_smoke(tmp_path: Path) -> None:
    """benchmarks/frames_bench.py: every way through the frame API runs and every stage of a
    live frame is timed (no timing asserted)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    out = tmp_path / "frames.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "frames_bench.py"), "--smoke", "--out",
         str(out), "--backends", "torch", "--detector", "haar"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())["results"]["torch"]
    assert r["detector"] == "haar"
    for faces in ("1_faces", "4_faces"):
        assert all(r[faces][k] > 0 for k in ("predict", "frame", "frames", "boxes")), r[faces]
    assert r["4_faces"]["faces_per_s_boxes"] == pytest.approx(4 * r["4_faces"]["boxes"], rel=0.01)
    assert set(r["stages_ms"]) == {"decode", "detect", "align", "forward", "encode"}
    assert r["1_faces"]["faces_found"] == 1.0
