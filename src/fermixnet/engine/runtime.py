"""`Runtime`: where and how one training process runs (device, precision, memory format, the
stop flag), resolved once from the config before `fit` builds anything."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from fermixnet.config import Config
from fermixnet.engine.distributed import DistInfo
from fermixnet.engine.evaluate import ModelInputs
from fermixnet.engine.preemption import StopRequest
from fermixnet.run_layout import RunLayout


def _precision(cfg: Config, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use GradScaler) for `train.amp` on this device."""
    amp = cfg.train.amp
    if amp == "auto":
        if device.type != "cuda":
            return None, False
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError(f"train.amp=fp16 needs CUDA, the device is {device} "
                             "(use --set train.amp=bf16 or off)")
        return torch.float16, True
    return (torch.bfloat16, False) if amp == "bf16" else (None, False)


@dataclass
class Runtime:
    """Where and how this process trains; fixed for the whole run."""

    cfg: Config
    out_dir: Path
    dist: DistInfo
    device: torch.device
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None
    """fp16 loss scaling (None otherwise); saved in checkpoints."""
    channels_last: bool
    stop: StopRequest
    """Set by the scheduler's signals; training checks it at each step boundary."""

    @classmethod
    def create(cls, cfg: Config, out_dir: Path, dist: DistInfo, device: torch.device,
               stop: StopRequest) -> Runtime:
        """Resolve `train.amp` and `train.channels_last` for `device`."""
        amp_dtype, use_scaler = _precision(cfg, device)
        channels_last = cfg.train.channels_last == "on" or (
            cfg.train.channels_last == "auto" and device.type == "cuda")
        scaler = torch.amp.GradScaler(device.type) if use_scaler else None
        return cls(cfg, out_dir, dist, device, amp_dtype, scaler, channels_last, stop)

    @property
    def layout(self) -> RunLayout:
        """Where the run folder's files are."""
        return RunLayout(self.out_dir)

    @property
    def inputs(self) -> ModelInputs:
        """How evaluation feeds the model: this device, precision and memory format."""
        return ModelInputs(self.device, self.cfg.data.mean, self.cfg.data.std,
                           self.channels_last, self.amp_dtype)
