"""The trunk interface shared by every backbone (ResNet-18/50, IR-50).

A trunk runs conv1 .. conv5_x and hands back both the conv4_x and the conv5_x feature maps, since
FERMixNet's mid-level branch (Sec. 3.3, Eq. 6) reads conv4_x and the high-level head reads conv5_x.
Trunks keep the parameter names of the code they come from (torchvision, face.evoLVe), so foreign
checkpoints map onto `trunk.<their key>` one to one.
"""

from __future__ import annotations

import torch
from torch import nn


class Trunk(nn.Module):
    """Base class of the backbones: conv1 .. conv5_x without pooling or classifier.

    Attributes:
        channels: (C4, C5), the channel counts of the conv4_x and conv5_x outputs.
        head_prefixes: key prefixes of the source network's own classifier layers (e.g. torchvision
            `fc.`, face.evoLVe `output_layer.`); `load_pretrained` skips them, never loads them.
    """

    channels: tuple[int, int] = (0, 0)
    head_prefixes: tuple[str, ...] = ()

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs the trunk.

        Args:
            x: images, (B, 3, H, W).

        Returns:
            (f4, f5): the conv4_x map (B, C4, h4, w4) and the conv5_x map (B, C5, h5, w5); ResNets
            give H/16 and H/32, IR-50 (stride-1 stem) H/8 and H/16.
        """
        raise NotImplementedError

    def conv5_module(self) -> nn.Module:
        """The module whose output is the conv5_x feature map (Grad-CAM target)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as `forward_features`."""
        return self.forward_features(x)
