"""Parameter and multiply-accumulate counts, in the convention of the paper's Table 1.

Table 1 reports 11.18 M parameters / 1.82 G for ResNet-18 (7 classes, 224 px) and 11.25 M / 1.83 G
with the mid-level branch. Counting convolutions and linear layers alone gives 1.81 G / 1.83 G, so
the table cannot come from that convention; the ptflops/thop-style count of per-module costs, which
adds batch norm, activations and pooling, gives 1.82 G / 1.83 G. `count_macs` therefore follows
ptflops' rules per leaf module (forward hooks):

- Conv: output elements x (kernel area x in_channels / groups), plus output elements for bias;
- Linear: input elements x out_features, plus out_features for bias;
- BatchNorm: input elements, twice when affine;
- ReLU / PReLU / other activations: output elements;
- pooling (max, average, adaptive): input elements.

Tensor additions (residuals, decision fusion) are not counted, as in ptflops.
`elementwise=False` counts convolutions and linear layers only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.PReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared ones once).

    Args:
        model: any module.
        trainable_only: count only parameters with `requires_grad`.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _module_macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor, elementwise: bool) -> int:
    if isinstance(module, nn.Conv2d):
        per_out = math.prod(module.kernel_size) * module.in_channels // module.groups
        return out.numel() * per_out + (out.numel() if module.bias is not None else 0)
    if isinstance(module, nn.Linear):
        bias = out.numel() if module.bias is not None else 0
        return inp.numel() * module.out_features + bias
    if not elementwise:
        return 0
    if isinstance(module, _NORMS):
        return inp.numel() * (2 if module.affine else 1)
    if isinstance(module, _ACTIVATIONS):
        return out.numel()
    if isinstance(module, _POOLS):
        return inp.numel()
    return 0


def count_macs(
    model: nn.Module,
    input_size: int | tuple[int, int] = 224,
    elementwise: bool = True,
) -> int:
    """Multiply-accumulates of one forward pass on one image (Table 1 convention, see module doc).

    Args:
        model: the network; it is run once in eval mode under `no_grad` and its mode is restored.
        input_size: side of a square input, or (H, W).
        elementwise: also count batch norm, activations and pooling (ptflops/thop style, which
            reproduces Table 1); False counts convolutions and linear layers only.

    Returns:
        MACs for a (1, 3, H, W) input.

    Raises:
        ValueError: if the input size is not positive.
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    if h <= 0 or w <= 0:
        raise ValueError(f"input_size must be positive, got {input_size!r}")
    total = 0

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        total += _module_macs(module, args[0], out, elementwise)

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    param = next(model.parameters(), None)
    x = torch.zeros(1, 3, h, w, device=param.device if param is not None else "cpu",
                    dtype=param.dtype if param is not None else torch.float32)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def format_count(value: int, unit: str = "M", digits: int = 2) -> str:
    """`value` in millions (`M`) or billions (`G`) with `digits` decimals, e.g. '11.18 M'."""
    divisor = {"M": 1e6, "G": 1e9}
    if unit not in divisor:
        raise ValueError(f"unit must be 'M' or 'G', got {unit!r}")
    return f"{value / divisor[unit]:.{digits}f} {unit}"
