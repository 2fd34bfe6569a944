"""FERMixNet: a trunk, the high-level head and the mid-level branch (Sec. 3.3-3.4, Fig. 2).

High-level representation: conv1 .. conv5_x, global average pooling, FC.
Mid-level representation (Eq. 6): F_mid = GMP(ReLU(Conv6(F))) on the conv4_x map F, where Conv6 is
a 1x1 convolution with stride 1 and C -> C channels, followed by its own FC.
Decision (Sec. 3.4): the two heads' logits are summed (decision fusion). `mid_branch=False` removes
the branch and leaves the plain backbone on the same code path (the baseline rows of Table 1).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from fermixnet.models.trunk import Trunk


def fuse_logits(high: torch.Tensor, mid: torch.Tensor | None) -> torch.Tensor:
    """Decision fusion (Sec. 3.4): high + mid logits, (B, K); high alone without the branch."""
    return high if mid is None else high + mid


class FERMixNetOutput(NamedTuple):
    """Both heads' logits.

    Attributes:
        high: logits of the high-level head, (B, K).
        mid: logits of the mid-level branch, (B, K); None when the model has no branch.
    """

    high: torch.Tensor
    mid: torch.Tensor | None = None

    @property
    def logits(self) -> torch.Tensor:
        """Decision fusion (Sec. 3.4): high + mid, or high alone without the branch."""
        return fuse_logits(self.high, self.mid)


class MidBranch(nn.Module):
    """The mid-level representation branch of Eq. 6 followed by its classifier.

    Args:
        channels: C, the channel count of the conv4_x map (kept by the 1x1 convolution).
        num_classes: K.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        # Stride 1 so every spatial position of conv4_x (a small face region) gets its own response.
        self.conv = nn.Conv2d(channels, channels, kernel_size=1, stride=1, bias=True)
        self.relu = nn.ReLU()  # not in-place: Grad-CAM hooks this module's output
        self.pool = nn.AdaptiveMaxPool2d(1)  # GMP keeps the most discriminative region only
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, f4: torch.Tensor) -> torch.Tensor:
        """Maps the conv4_x map (B, C, h, w) to logits (B, K)."""
        x = self.relu(self.conv(f4))  # (B, C, h, w)
        return self.fc(torch.flatten(self.pool(x), 1))  # (B, C) -> (B, K)

    def reset_parameters(self) -> None:
        """Fresh initialisation (PyTorch defaults)."""
        self.conv.reset_parameters()
        self.fc.reset_parameters()


class FERMixNet(nn.Module):
    """Trunk + high-level head (GAP, FC) + optional mid-level branch, summed at the decision.

    Build it with `fermixnet.models.create_model`. `forward` returns `FERMixNetOutput`; for export
    (ONNX, TorchScript) use `forward_export` or wrap the model in `ExportWrapper`, which return
    plain tensors.

    Args:
        trunk: the backbone (conv1 .. conv5_x).
        arch: the registry name of the trunk, stored in checkpoints.
        num_classes: K (>= 2).
        mid_branch: add the mid-level branch.
    """

    def __init__(self, trunk: Trunk, arch: str, num_classes: int, mid_branch: bool = True) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.arch = arch
        self.num_classes = num_classes
        self.mid_branch = mid_branch
        self.trunk = trunk
        c4, c5 = trunk.channels
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c5, num_classes)
        self.mid = MidBranch(c4, num_classes) if mid_branch else None

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The conv4_x and conv5_x feature maps (B, C4, h4, w4) and (B, C5, h5, w5)."""
        return self.trunk.forward_features(x)

    def _heads(
        self, f4: torch.Tensor, f5: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        high = self.fc(torch.flatten(self.global_pool(f5), 1))  # (B, C5) -> (B, K)
        mid = self.mid(f4) if self.mid is not None else None
        return high, mid

    def forward_head(self, f4: torch.Tensor, f5: torch.Tensor) -> FERMixNetOutput:
        """Both heads on given feature maps."""
        high, mid = self._heads(f4, f5)
        return FERMixNetOutput(high, mid)

    def forward(self, x: torch.Tensor) -> FERMixNetOutput:
        """Images (B, 3, H, W), normalised, any memory format -> `FERMixNetOutput`."""
        f4, f5 = self.forward_features(x)
        return self.forward_head(f4, f5)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Fused logits only (high + mid), (B, K): what prediction and evaluation use."""
        return fuse_logits(*self._heads(*self.forward_features(x)))

    def forward_export(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Export-friendly forward: plain tensors, fixed arity.

        Returns:
            (logits, high, mid), each (B, K). Without the branch `mid` is zeros and logits == high,
            so exported graphs always have the same three outputs.
        """
        high, mid = self._heads(*self.forward_features(x))
        return fuse_logits(high, mid), high, torch.zeros_like(high) if mid is None else mid

    def feature_layers(self) -> dict[str, nn.Module]:
        """Grad-CAM targets: `high` outputs conv5_x; `mid` outputs ReLU(Conv6(conv4_x)) (Eq. 6)."""
        layers = {"high": self.trunk.conv5_module()}
        if self.mid is not None:
            layers["mid"] = self.mid.relu
        return layers

    def head_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes of the classifier heads (never taken from pretrained files)."""
        return ("fc.", "mid.") if self.mid is not None else ("fc.",)

    def reset_heads(self) -> None:
        """Re-initialises the high-level FC and the mid-level branch."""
        self.fc.reset_parameters()
        if self.mid is not None:
            self.mid.reset_parameters()

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, num_classes={self.num_classes}, mid_branch={self.mid_branch}"


class ExportWrapper(nn.Module):
    """Wraps a FERMixNet so that `forward` returns `(logits, high, mid)` tensors.

    Use it for `torch.onnx.export`, `torch.jit.trace`/`script` and `torch.export`, which want
    tensors rather than a NamedTuple with an optional field. See `FERMixNet.forward_export`.
    """

    def __init__(self, model: FERMixNet) -> None:
        super().__init__()
        self.model = model
        # Adopt the model's mode: exporters restore the wrapper's mode afterwards, and a wrapper
        # left in training mode would switch an eval model back to batch statistics.
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, high, mid), each (B, K)."""
        return self.model.forward_export(x)
