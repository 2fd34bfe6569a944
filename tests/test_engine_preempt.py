"""Preemption end to end: a stop signal mid-epoch leaves a mid-epoch checkpoint and exit status
75, and `--resume` reaches the weights and metrics of an uninterrupted run (DataLoader with
`workers: 0`, and `data.on_device`); submitit's signal requeues a sweep task, which resumes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fermixnet.cli import main
from fermixnet.config import load_config
from fermixnet.engine import fit
from fermixnet.engine.checkpoint import load_train_state
from fermixnet.engine.preemption import EXIT_STOPPED

SRC = str(Path(__file__).resolve().parents[1] / "src")
VARIANTS = {"workers0": [], "on_device": ["data.on_device=true"]}

# `fermixnet train` in a subprocess whose per-step hook sends SIGNAL to the process itself
# (under torchrun: only to rank TO_RANK) after step STOP_AT: the signal arrives at a known step,
# as SLURM's would at some step.
SELF_SIGNAL = """
import functools, os, signal, sys
import fermixnet.engine as engine
def hook(info):
    rank = os.environ.get("RANK", "0")
    if info.global_step == int(os.environ["STOP_AT"]) and rank == os.environ.get("TO_RANK", rank):
        os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
engine.fit = functools.partial(engine.fit, hook=hook)
from fermixnet.cli import main
sys.exit(main(sys.argv[1:]))
"""

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, make_manifest, tiny_config):
    """Uninterrupted 3-epoch runs (2 steps per epoch) of each data path."""
    tmp = tmp_path_factory.mktemp("preempt")
    cfg = tiny_config(tmp, make_manifest(tmp / "data", per_class=4, test_per_class=2))
    for name, sets in VARIANTS.items():
        extra = ["--set", *sets] if sets else []
        assert main(["train", "--config", str(cfg), "--out", str(tmp / name), *extra]) == 0
    return tmp, cfg


def _metrics_rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return [{k: v for k, v in row.items() if k not in ("images_per_s", "time_s")}
                for row in csv.DictReader(f)]


def _assert_same_run(ref: Path, run: Path) -> None:
    for name in ("last", "best"):
        a = load_file(str(ref / "checkpoints" / name / "model.safetensors"))
        b = load_file(str(run / "checkpoints" / name / "model.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert _metrics_rows(run) == _metrics_rows(ref)


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "sig"), [("workers0", "SIGTERM"), ("on_device", "SIGUSR1")])
def test_signal_mid_epoch_checkpoints_and_resumes_bit_identically(reference, variant, sig):
    tmp, cfg = reference
    run = tmp / f"stopped_{variant}"
    sets = ["--set", *VARIANTS[variant]] if VARIANTS[variant] else []
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "STOP_AT": "3",
           "SIGNAL": sig}
    proc = subprocess.run([sys.executable, "-c", SELF_SIGNAL, "train", "--config", str(cfg),
                           "--out", str(run), *sets], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == EXIT_STOPPED, proc.stderr[-3000:]
    assert f"{sig} received: stopped at step 1 of epoch 2" in proc.stderr
    state = load_train_state(run / "checkpoints" / "last")
    assert (state["epoch"], state["step"], state["global_step"]) == (1, 1, 3)
    assert len(state["history"]) == 1  # the partial epoch is not history
    assert load_train_state(run / "checkpoints" / "best")["step"] == 0  # best is untouched
    assert len(_metrics_rows(run)) == 1
    assert json.loads((run / "metrics.json").read_text())["status"] == "stopped"
    assert main(["train", "--resume", str(run)]) == 0
    _assert_same_run(tmp / variant, run)


@pytest.mark.slow
def test_submitit_signal_requeues_the_task_which_resumes(reference, monkeypatch):
    """SIGUSR2 (submitit's) to a sweep task under the local executor during epoch 2: the run
    checkpoints at the next step boundary, submitit requeues the task, and the requeued task
    resumes the run to the weights of an uninterrupted one."""
    pytest.importorskip("submitit")
    from fermixnet.engine.sweep_launch import RunTask, SlurmOptions, make_executor

    tmp, cfg_path = reference
    cfg = load_config(cfg_path, ["train.batch_size=4", "train.epochs=2"])  # 5 steps per epoch
    fit(cfg, tmp / "small_batches")
    monkeypatch.setenv("FERMIXNET_PROGRESS_EVERY", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run = tmp / "sweep" / "tiny" / "seed0"
    executor = make_executor("local", tmp / "sweep" / ".submitit",
                             SlurmOptions(gpus_per_task=0, cpus_per_task=1), name="preempt")
    job = executor.submit(RunTask(), cfg.to_dict(), str(run))
    deadline = time.time() + 300

    def log(which: str = "stderr") -> str:
        path = getattr(job.paths, which)
        return path.read_text() if path.exists() else ""

    while "epoch 2: 1/5" not in log():
        assert not job.done() and time.time() < deadline, "the task ended before the signal"
        time.sleep(0.05)
    # What SLURM's --signal=USR2@90 does: signal the task's process (submitit's controller
    # process, which `job._interrupt()` signals, forwards only SIGTERM).
    os.kill(json.loads((run / "task.json").read_text())["pid"], signal.SIGUSR2)
    while not job.done():
        assert time.time() < deadline, "the requeued task did not finish"
        time.sleep(0.2)
    assert job.result() == "partial"  # the requeued task found the run half done
    assert "SIGUSR2 received: stopped at" in log() and "Requeued job" in log("stdout")
    assert json.loads((run / "task.json").read_text())["state"] == "done"
    _assert_same_run(tmp / "small_batches", run)


@pytest.mark.slow
def test_ddp_stops_every_rank_at_the_step_where_one_rank_was_signalled(reference):
    """Two gloo processes under torchrun, SIGTERM to rank 1 only: both stop after the same step
    (the flag is all-reduced), rank 0 writes the mid-epoch checkpoint, and a 2-process resume
    reaches the weights of an uninterrupted 2-process run."""
    tmp, cfg = reference
    script = tmp / "self_signal.py"
    script.write_text(SELF_SIGNAL)
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "STOP_AT": "3",
           "SIGNAL": "SIGTERM", "TO_RANK": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2"]
    epochs = ["--set", "train.epochs=2"]

    def train(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*torchrun, *args], env=env, capture_output=True, text=True,
                              timeout=300)

    ref = train("-m", "fermixnet.cli", "train", "--config", str(cfg), "--out",
                str(tmp / "ddp_ref"), *epochs)
    assert ref.returncode == 0, ref.stderr[-3000:]
    run = tmp / "ddp_stopped"
    stopped = train(str(script), "train", "--config", str(cfg), "--out", str(run), *epochs)
    # torchrun reports the stop as a failed worker (status 1, and it may end the second worker
    # once the first has exited: the exit statuses are asserted in one process, above).
    assert stopped.returncode != 0, stopped.stderr[-3000:]
    # Rank 0 (not signalled) stopped at the same step and wrote the checkpoint.
    assert "a stop signal (to another process) received: stopped at step 1 of epoch 2" in \
        stopped.stderr
    state = load_train_state(run / "checkpoints" / "last")
    assert (state["epoch"], state["step"], state["global_step"]) == (1, 1, 3)
    resumed = train("-m", "fermixnet.cli", "train", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_run(tmp / "ddp_ref", run)


@pytest.mark.parametrize(("status", "exit_status", "requeued"), [
    ("stopped", EXIT_STOPPED, True),
    ("stopped", 137, True),  # srun reports the rank it killed after the first one exited
    ("running", 1, False),  # a crash is not requeued
])
def test_documented_job_script_requeues_a_stopped_run(tmp_path, job_script, status, exit_status,
                                                      requeued):
    bin_dir, out = tmp_path / "bin", tmp_path / "run"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(  # what the ranks leave behind, then srun's exit status
        f"#!/bin/sh\nmkdir -p '{out}'\n"
        f"printf '{{\\n  \"status\": \"{status}\"\\n}}\\n' > '{out}/metrics.json'\n"
        f"exit {exit_status}\n")
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" > '{tmp_path}/scontrol.txt'\n")
    for tool in ("srun", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    (tmp_path / "job.sbatch").write_text(job_script)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(out),
           "SLURM_JOB_ID": "4242"}
    proc = subprocess.run(["bash", str(tmp_path / "job.sbatch")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == exit_status, proc.stderr
    assert json.loads((out / "metrics.json").read_text())["status"] == status
    calls = tmp_path / "scontrol.txt"
    assert (calls.read_text().split() if calls.exists() else []) == (
        ["requeue", "4242"] if requeued else [])


def test_stop_signals_add_submitits_signal_only_in_its_tasks():
    from fermixnet.engine.preemption import stop_signals

    assert signal.SIGUSR2 not in stop_signals({})
    assert set(stop_signals({"SUBMITIT_EXECUTOR": "slurm"})) == {
        signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2}
