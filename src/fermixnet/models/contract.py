"""The contract between the data and a model: what a checkpoint's input is and where it is stored.

A model takes (B, 3, H, W) float RGB scaled to [0, 1] and normalised with its checkpoint's
mean/std (by default ImageNet's, the statistics of the pretrained backbones). The images travel as
uint8 up to the training or evaluation step, which converts them on the device with
`to_model_input`. A checkpoint is a folder with `WEIGHTS_NAME` (safetensors) and `META_NAME`
(classes, input size, mean/std, recipe; `fermixnet.models.weights`).
"""

from __future__ import annotations

import torch

__all__ = [
    "DEFAULT_INPUT_SIZE", "IMAGENET_MEAN", "IMAGENET_STD", "META_NAME", "WEIGHTS_NAME",
    "to_model_input",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
# The paper's input side (Sec. 4.2: faces resized to 224 x 224); a checkpoint records its own.
DEFAULT_INPUT_SIZE = 224
WEIGHTS_NAME = "model.safetensors"
META_NAME = "meta.json"


def to_model_input(
    x: torch.Tensor, device: torch.device, mean: torch.Tensor, std: torch.Tensor,
    channels_last: bool,
) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> normalised float on `device` (conversion happens on the device)."""
    x = x.to(device, non_blocking=True).float().div_(255.0)
    x = (x - mean) / std  # mean, std: (1, 3, 1, 1) on device
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
