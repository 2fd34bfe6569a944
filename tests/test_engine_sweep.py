"""Sweep runner with a fake trainer: configs x seeds, skip/resume, mean and spread."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from fermixnet.engine.sweep import sweep


def write_cfg(path: Path, p_mix: float) -> Path:
    path.write_text(f"data: {{train: ['manifest:/x'], test: ['manifest:/x']}}\n"
                    f"mix: {{p_mix: {p_mix}}}\n")
    return path


class FakeFit:
    """Writes a finished run whose accuracy depends on p_mix and the seed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, bool]] = []

    def __call__(self, cfg, out_dir, resume=False):
        self.calls.append((cfg.name, cfg.train.seed, resume))
        acc = cfg.mix.p_mix / 2 + 0.01 * cfg.train.seed
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({
            "status": "complete", "best_val": acc,
            "test": {"raf": {"last": {"accuracy": acc, "subsets": {"occluded": acc / 2}},
                             "best": {"accuracy": acc + 0.1, "heads": {"mid": acc}}}}}))


def test_sweep_tabulates_mean_and_spread(tmp_path):
    a, b = write_cfg(tmp_path / "pa.yaml", 0.4), write_cfg(tmp_path / "pb.yaml", 0.8)
    fake = FakeFit()
    md = sweep([a, b], [0, 1, 2], tmp_path / "sw", runner=fake)
    assert len(fake.calls) == 6 and not any(r for *_, r in fake.calls)
    text = md.read_text()
    accs = [0.2, 0.21, 0.22]
    mean, std = statistics.fmean(accs), statistics.stdev(accs)
    assert f"| raf accuracy (last) | {100 * mean:.2f} ± {100 * std:.2f} (3) |" in text
    rows = {(r["config"], r["metric"]): r for r in csv.DictReader((tmp_path / "sw" /
                                                                   "summary.csv").open())}
    assert float(rows[("pb", "raf occluded (last)")]["mean"]) == pytest.approx(0.41 / 2)
    assert float(rows[("pa", "raf mid head (best)")]["max"]) == pytest.approx(0.22)
    # Started again: finished runs are skipped.
    sweep([a, b], [0, 1, 2], tmp_path / "sw", runner=fake)
    assert len(fake.calls) == 6


def test_sweep_resumes_partial_runs(tmp_path, monkeypatch):
    a = write_cfg(tmp_path / "pa.yaml", 0.4)
    monkeypatch.setattr("fermixnet.engine.sweep_launch.run_status", lambda d: "partial")
    fake = FakeFit()
    sweep([a], [5], tmp_path / "sw", runner=fake)
    assert fake.calls == [("pa", 5, True)]
