"""`fermixnet train` under `srun`: rank, world size, local rank and rendezvous from SLURM's
variables when torchrun's are absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fermixnet.engine.distributed import (
    MASTER_PORT_BASE,
    first_host,
    init_distributed,
    process_rank,
    slurm_env,
)

# What srun sets for task 5 of a 2-node x 4-task step (job 123456).
SRUN_TASK = {"SLURM_JOB_ID": "123456", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
             "SLURM_STEP_NUM_TASKS": "8", "SLURM_NTASKS": "8",
             "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_STEP_NODELIST": "gpu[07-08]"}
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def clean_env(monkeypatch):
    for name in (*TORCHRUN_VARS, *SRUN_TASK):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(("nodelist", "host"), [
    ("node[01-04,07]", "node01"), ("gpu5", "gpu5"), ("node7,node8", "node7"),
    ("a[1-2]-b[3-4],c5", "a1-b3"), ("n[3,5]x", "n3x"), ("rack[2]-n[010-012]", "rack2-n010"),
])
def test_first_host_of_a_compressed_nodelist(nodelist, host):
    assert first_host(nodelist) == host


@pytest.mark.parametrize("nodelist", ["", "node[01-04", ",node1"])
def test_first_host_rejects_malformed_lists(nodelist):
    with pytest.raises(ValueError, match="SLURM_JOB_NODELIST"):
        first_host(nodelist)


def test_srun_task_maps_to_torchrun_variables():
    assert slurm_env(SRUN_TASK) == {
        "RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "gpu07",
        "MASTER_PORT": str(MASTER_PORT_BASE + 123456 % 20000)}


def test_torchrun_wins_and_batch_scripts_are_one_process():
    assert slurm_env({**SRUN_TASK, "WORLD_SIZE": "2", "RANK": "0"}) == {}
    # The batch script itself (no srun step) sees SLURM_NTASKS but is a single process.
    batch = {k: v for k, v in SRUN_TASK.items() if not k.startswith("SLURM_STEP")}
    assert slurm_env(batch) == {}


def test_given_master_address_and_port_are_kept():
    env = slurm_env({**SRUN_TASK, "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"})
    assert env["MASTER_ADDR"] == "10.0.0.1" and env["MASTER_PORT"] == "29500"


def test_bad_slurm_variable_names_itself():
    with pytest.raises(ValueError, match="SLURM_PROCID"):
        slurm_env({**SRUN_TASK, "SLURM_PROCID": "x"})


def test_process_rank_reads_slurm_under_srun(clean_env):
    assert process_rank() == 0
    for k, v in SRUN_TASK.items():
        clean_env.setenv(k, v)
    assert process_rank() == 5


def test_init_distributed_under_a_one_task_srun_step(clean_env):
    """A sweep task of a SLURM array is a one-task srun step: no process group, rank 0."""
    for k, v in {**SRUN_TASK, "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
                 "SLURM_STEP_NUM_TASKS": "1"}.items():
        clean_env.setenv(k, v)
    info, device = init_distributed("cpu")
    assert (info.rank, info.world_size, info.enabled, device.type) == (0, 1, False, "cpu")
    assert os.environ["WORLD_SIZE"] == "1" and "MASTER_ADDR" not in os.environ


FAKE_SRUN = """#!{python}
# Stand-in for srun on one machine: start SLURM_NTASKS copies of the command with the variables
# srun gives each task, wait for all, fail if one failed.
import os, subprocess, sys
args = sys.argv[1:]
while args[0].startswith("-"):  # srun's own options come before the command
    args.pop(0)
n = int(os.environ["SLURM_NTASKS"])
procs = [subprocess.Popen(args, env={{**os.environ, "SLURM_PROCID": str(i), "SLURM_LOCALID": str(i),
         "SLURM_STEP_NUM_TASKS": str(n), "SLURM_STEP_NODELIST": os.environ["SLURM_JOB_NODELIST"],
         "SLURM_STEP_ID": "0"}}) for i in range(n)]
sys.exit(max(p.wait() for p in procs))
"""


@pytest.mark.slow
def test_documented_job_script_trains_two_ranks_through_srun_variables(tmp_path, clean_env,
                                                                      job_script):
    from fermixnet.synth.generate import generate_synthetic

    root = tmp_path / "faces"
    generate_synthetic(root, seed=0, size=32, counts={"train": 28, "val": 14, "test": 14})
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f"""
model: {{name: resnet18, num_classes: 7, input_size: 32}}
data: {{train: ["manifest:{root}"], val: ["manifest:{root}"], test: ["manifest:{root}"],
        workers: 0, cache_dir: "{tmp_path / 'cache'}"}}
train: {{epochs: 1, batch_size: 8, device: cpu, cpu_threads: 1}}
""")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(FAKE_SRUN.format(python=sys.executable))
    (bin_dir / "srun").chmod(0o755)
    (tmp_path / "job.sbatch").write_text(job_script)
    run = tmp_path / "run"
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
           "CONFIG": str(cfg), "OUT": str(run), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
           # what sbatch gives the batch script of a 1-node x 2-task job
           "SLURM_JOB_ID": str(30000 + os.getpid() % 9999), "SLURM_NTASKS": "2",
           "SLURM_JOB_NODELIST": "localhost"}
    proc = subprocess.run(["bash", str(tmp_path / "job.sbatch"), "--set", "eval.batch_size=4"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Two tasks started; had each thought itself alone, both would train and report.
    assert proc.stdout.count("run folder") == 1 and proc.stdout.count("epoch 1/1") == 1
    assert json.loads((run / "metrics.json").read_text())["status"] == "complete"
    # Submitted again, the script resumes the finished run instead of refusing to overwrite it.
    again = subprocess.run(["bash", str(tmp_path / "job.sbatch")], env=env,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
