"""Sweeps through submitit: local subprocess tasks (the submission path of a cluster), kill and
resubmit, `--status`, and the sbatch array job that `--launcher slurm` writes."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit")

from fermixnet.cli import main
from fermixnet.engine.checkpoint import is_complete
from fermixnet.engine.sweep_launch import parse_time
from fermixnet.engine.sweep_status import sweep_status
from fermixnet.synth.generate import generate_synthetic

SEEDS = ["0", "1"]


def _recipe(path: Path, root: Path, cache: Path, p_mix: float) -> Path:
    path.write_text(f"""
model: {{name: resnet18, num_classes: 7, input_size: 32}}
data: {{train: ["manifest:{root}"], val: ["manifest:{root}"], test: ["manifest:{root}"],
        workers: 0, cache_dir: "{cache}"}}
mix: {{p_mix: {p_mix}}}
optim: {{lr: 0.02}}
train: {{epochs: 2, batch_size: 8, device: cpu, cpu_threads: 1, log_every: 1}}
eval: {{batch_size: 16}}
""")
    return path


@pytest.fixture(scope="module")
def recipes(tmp_path_factory):
    """Two tiny recipes on generated faces, and the summary of their sweep run locally."""
    tmp = tmp_path_factory.mktemp("sweep")
    root = tmp / "faces"
    generate_synthetic(root, seed=0, size=32, counts={"train": 28, "val": 14, "test": 14})
    cfgs = [str(_recipe(tmp / f"{n}.yaml", root, tmp / "cache", p)) for n, p in
            (("plain", 0.0), ("mixed", 0.5))]
    local = tmp / "local"
    assert main(["sweep", "--configs", *cfgs, "--seeds", *SEEDS, "--out", str(local)]) == 0
    return tmp, cfgs, (local / "summary.csv").read_text()


class Killer(threading.Thread):
    """Watches the running tasks: counts how many run at once, and SIGKILLs the task of
    `victim` once its first epoch is checkpointed (midway: one epoch is left)."""

    def __init__(self, sweep_dir: Path, victim: str) -> None:
        super().__init__(daemon=True)
        self.sweep_dir, self.victim = sweep_dir, sweep_dir / victim
        self.most_at_once, self.killed_midway, self.stop = 0, None, threading.Event()

    def _live(self) -> list[dict]:
        out = []
        for task in self.sweep_dir.glob("*/seed*/task.json"):
            try:
                rec = json.loads(task.read_text())
                if rec["state"] == "running":
                    os.kill(rec["pid"], 0)
                    out.append(rec)
            except (ProcessLookupError, json.JSONDecodeError, FileNotFoundError):
                pass
        return out

    def run(self) -> None:
        while not self.stop.is_set():
            self.most_at_once = max(self.most_at_once, len(self._live()))
            if self.killed_midway is None and is_complete(self.victim / "checkpoints" / "last"):
                rec = json.loads((self.victim / "task.json").read_text())
                done = (self.victim / "metrics.json").is_file() and json.loads(
                    (self.victim / "metrics.json").read_text()).get("status") == "complete"
                os.kill(rec["pid"], signal.SIGKILL)
                self.killed_midway = not done
            time.sleep(0.01)


def _jobs(sweep_dir: Path) -> set[str]:
    return {p.name for p in (sweep_dir / ".submitit").iterdir() if p.is_dir() and "%" not in p.name}


@pytest.mark.slow
def test_submitit_tasks_two_at_a_time_kill_and_resubmit(recipes, monkeypatch):
    tmp, cfgs, local_summary = recipes
    monkeypatch.setenv("FERMIXNET_PROGRESS_EVERY", "1")  # a progress line per step in the logs
    out = tmp / "cluster"
    argv = ["sweep", "--configs", *cfgs, "--seeds", *SEEDS, "--out", str(out),
            "--launcher", "submitit-local", "--parallelism", "2", "--gpus-per-task", "0",
            "--cpus-per-task", "1"]
    killer = Killer(out, "mixed/seed1")
    killer.start()
    try:
        assert main(argv) == 1  # one run was killed: not everything is done
    finally:
        killer.stop.set()
        killer.join()
    assert killer.killed_midway, "the victim finished before it could be killed"
    assert killer.most_at_once == 2  # 4 tasks, never more than 2 at once
    assert len(_jobs(out)) == 4
    states = {i.run: i.state for i in sweep_status(out)}
    assert states == {"plain/seed0": "done", "plain/seed1": "done", "mixed/seed0": "done",
                      "mixed/seed1": "stopped"}
    first = _jobs(out)
    assert main(argv) == 0  # resubmitted: only the killed run runs again
    (new_job,) = _jobs(out) - first
    log = next((out / ".submitit" / new_job).glob("*_log.out")).read_text()
    assert "mixed seed 1: partial, resuming" in log
    # Logs are no terminal: progress comes as lines (training steps, evaluation batches).
    err = next((out / ".submitit" / new_job).glob("*_log.err")).read_text()
    assert re.search(r"^epoch 2: 1/3 \(33%\) loss=\d+\.\d{4} .*eta ", err, re.M), err[-2000:]
    assert "eval: 1/1 (100%)" in err
    history = json.loads((out / "mixed" / "seed1" / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    # Bit-identical resume and the same code path as local runs: the same summary, to the digit.
    assert (out / "summary.csv").read_text() == local_summary
    assert main(["sweep", "--status", "--out", str(out)]) == 0


@pytest.mark.slow
def test_status_shows_a_failed_task_with_its_log(recipes, capsys):
    tmp, cfgs, _ = recipes
    bad = Path(cfgs[0]).read_text().replace(str(tmp / "faces"), str(tmp / "no-such-folder"))
    (tmp / "bad.yaml").write_text(bad)
    out = tmp / "failing"
    assert main(["sweep", "--configs", str(tmp / "bad.yaml"), "--out", str(out), "--launcher",
                 "submitit-local", "--gpus-per-task", "0"]) == 1
    (info,) = sweep_status(out)
    assert info.state == "failed" and "FileNotFoundError" in info.detail
    assert any("no-such-folder" in line for line in info.log_tail)
    capsys.readouterr()
    assert main(["sweep", "--status", "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "1 failed" in text and "| " in text and "no-such-folder" in text


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    """`sbatch` on PATH that keeps the script it is given and answers like SLURM (no cluster
    runs it: the test ends where the scheduler would take over)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "sbatch"
    script.write_text(f"#!{sys.executable}\nimport shutil, sys\n"
                      f"shutil.copy(sys.argv[-1], {str(tmp_path / 'submitted.sh')!r})\n"
                      "print('Submitted batch job 4242')\n")
    srun = bin_dir / "srun"  # submitit checks that it exists; the job script would call it
    srun.write_text("#!/bin/sh\nexit 1\n")
    for exe in (script, srun):
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "submitted.sh"


def test_slurm_launcher_submits_one_array_job(tmp_path, fake_sbatch, capsys):
    cfgs = []
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text("data: {train: ['manifest:/x']}\n")
        cfgs.append(str(tmp_path / f"{name}.yaml"))
    out = tmp_path / "sw"
    assert main(["sweep", "--configs", *cfgs, "--seeds", "0", "1", "--out", str(out),
                 "--launcher", "slurm", "--partition", "gpu", "--time", "1:30:00",
                 "--gpus-per-task", "1", "--cpus-per-task", "6", "--mem-gb", "32",
                 "--parallelism", "2", "--slurm-option", "account=lab"]) == 0
    assert "submitted array job 4242 with 4 tasks" in capsys.readouterr().out
    sbatch = fake_sbatch.read_text()
    for line in ("--array=0-3%2", "--partition=gpu", "--time=90", "--gpus-per-node=1",
                 "--cpus-per-task=6", "--mem=32GB", "--account=lab", "--signal=USR2@"):
        assert f"#SBATCH {line}" in sbatch, line
    assert "submitit.core._submit" in sbatch
    assert {i.run: i.state for i in sweep_status(out)} == {
        f"{c}/seed{s}": "pending" for c in "ab" for s in (0, 1)}


@pytest.mark.parametrize(("text", "minutes"), [("90", 90), ("1:30:00", 90), ("2-00:00:00", 2880),
                                               ("0:00:30", 1), ("2-12", 3600)])
def test_parse_time(text, minutes):
    assert parse_time(text) == minutes


def test_parse_time_rejects_garbage():
    with pytest.raises(ValueError, match="--time"):
        parse_time("1h")
