"""Process-group setup for `torchrun` or `srun`: one process per device, gloo on CPU, nccl on CUDA.

Without the `torchrun` environment (`WORLD_SIZE` unset or 1) everything here is a no-op, so the
same training command runs on one CPU, one GPU, or many GPUs on many nodes. Under SLURM's `srun`
(one task per GPU, no `torchrun`), `slurm_env` derives torchrun's variables from SLURM's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True under `torchrun` with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files and prints."""
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """Map the config's `train.device` to a device; `auto` prefers cuda, then mps, then cpu.

    Raises:
        ValueError: the device is not available here.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"train.device: unknown device {name!r} ({err})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device=cuda but CUDA is not available "
                             "(use --set train.device=cpu)")
        if device.index is None:  # a task that sees one GPU only (srun --gpus-per-task=1)
            device = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("train.device=mps but MPS is not available (use --set train.device=cpu)")
    return device


MASTER_PORT_BASE = 20000
"""`MASTER_PORT` under `srun` is this plus the job id modulo 20000 (every job its own port)."""


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: `node[01-04,07],gpu5` -> `node01`.

    A small parser rather than `scontrol show hostnames`, so that it works (and is tested)
    without SLURM's tools; only the first host is needed (the rendezvous runs on rank 0's node,
    and SLURM gives rank 0 to the first node).

    Raises:
        ValueError: an empty or malformed list.
    """
    head = re.match(r"([^,\[\]]+|\[[^\[\]]+\])+(?=,|$)", nodelist.strip())
    host = head.group(0) if head else ""
    if not host:
        raise ValueError(f"SLURM_JOB_NODELIST={nodelist!r}: expected hosts like node[01-04,07]")
    # Each bracket group stands for its first value: `[01-04,07]` -> `01`.
    return re.sub(r"\[([^\],-]+)[^\]]*\]", r"\1", host)


def slurm_env(environ: Mapping[str, str]) -> dict[str, str]:
    """torchrun's variables derived from SLURM's, for a `srun` step without `torchrun`.

    Returns `{}` when torchrun's `WORLD_SIZE` is set (torchrun wins) or when this is not a task
    of a `srun` step (`SLURM_STEP_NUM_TASKS` is only set there: a batch script that calls
    `fermixnet train` directly is one process, whatever `--ntasks` it asked for). `MASTER_ADDR`
    and `MASTER_PORT` already in the environment are kept.

    Mapping: `RANK=SLURM_PROCID`, `WORLD_SIZE=SLURM_STEP_NUM_TASKS`, `LOCAL_RANK=SLURM_LOCALID`,
    `MASTER_ADDR` = first host of `SLURM_STEP_NODELIST` (or `SLURM_JOB_NODELIST`),
    `MASTER_PORT` = `MASTER_PORT_BASE + SLURM_JOB_ID % 20000`.

    Raises:
        ValueError: a SLURM variable that is missing or not a number.
    """
    if "WORLD_SIZE" in environ or "SLURM_STEP_NUM_TASKS" not in environ:
        return {}

    def number(name: str) -> int:
        value = environ.get(name)
        if value is None or not value.strip().isdigit():
            raise ValueError(f"srun task without a valid {name} (got {value!r}); expected an "
                             "integer, as srun sets it")
        return int(value)

    world = number("SLURM_STEP_NUM_TASKS")
    out = {"RANK": str(number("SLURM_PROCID")), "WORLD_SIZE": str(world),
           "LOCAL_RANK": str(number("SLURM_LOCALID"))}
    if world > 1:
        nodes = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST", "")
        out["MASTER_ADDR"] = environ.get("MASTER_ADDR") or first_host(nodes)
        out["MASTER_PORT"] = environ.get("MASTER_PORT") or str(
            MASTER_PORT_BASE + number("SLURM_JOB_ID") % 20000)
    return out


def process_rank() -> int:
    """This process's global rank: torchrun's `RANK`, else SLURM's under `srun`, else 0."""
    return int(os.environ.get("RANK") or slurm_env(os.environ).get("RANK", "0"))


def init_distributed(device_name: str) -> tuple[DistInfo, torch.device]:
    """Join the `torchrun` (or `srun`) process group if there is one and pick the device."""
    os.environ.update(slurm_env(os.environ))  # env:// rendezvous reads these
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    info = DistInfo(rank=rank, world_size=world, local_rank=local)
    device = resolve_device(device_name, local)
    if info.enabled and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return info, device


def shutdown_distributed() -> None:
    """Leave the process group (safe to call when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for all processes (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over processes in place (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_objects(obj: Any) -> list[Any]:
    """Gather one picklable object per process, in rank order (a one-item list without a group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's value of `obj` on every process."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
