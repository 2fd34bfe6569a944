"""In-memory synthetic faces for the benchmarks, and a briefly trained model to measure with.

Faces come from `fermixnet.synth.generate` (the project's generator), drawn straight into arrays
rather than files. Agreement between int8 and fp32 predictions only means something for a model
whose logits carry signal, so `quick_model` trains FERMixNet for a few co-training steps on such
faces (or loads a checkpoint when given one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common import MEAN, STD


def faces(
    count: int, size: int, seed: int = 0, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` synthetic faces: uint8 (N, size, size, 3) RGB and int64 (N,) labels."""
    from fermixnet.synth.generate import SynthConfig, render_sample

    cfg = SynthConfig()
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int64)
    for i in range(count):
        images[i], labels[i], _ = render_sample(seed, split, i, size, cfg)
    return images, labels


def normalise(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), ImageNet mean/std (what the model takes)."""
    x = images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    mean = np.asarray(MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(STD, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x - mean) / std)


def quick_model(
    device: torch.device, size: int, steps: int, batch: int = 32, checkpoint: Path | None = None,
    seed: int = 0,
) -> tuple[torch.nn.Module, str]:
    """FERMixNet (ResNet-18, 7 classes, mid branch) from ``checkpoint``, else briefly trained.

    Returns:
        ``(model in eval mode on device, description of where its weights came from)``.
    """
    if checkpoint is not None:
        from fermixnet.models.weights import load_checkpoint

        model, _ = load_checkpoint(str(checkpoint), device=str(device))
        return model.eval(), f"checkpoint {checkpoint}"
    from steps import build_trainer

    trainer = build_trainer(device, lr=0.05, seed=seed)
    images, labels = faces(steps * batch, size, seed=seed, split="train")
    u8 = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
    y = torch.from_numpy(labels).to(device)
    for i in range(steps):
        part = slice(i * batch, (i + 1) * batch)
        trainer.cotrain(u8[part], y[part])
    return trainer.model.eval(), (
        f"ResNet-18 FERMixNet trained here for {steps} co-training steps of {batch} synthetic "
        f"faces at {size} px"
    )
