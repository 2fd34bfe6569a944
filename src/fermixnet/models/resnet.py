"""ResNet-18 / ResNet-50 trunks in torchvision's layout (the paper's backbone, Sec. 3.1).

The modules are taken from `torchvision.models.resnet*(weights=None)` under their own names
(`conv1, bn1, layer1 .. layer4`), so a torchvision-named state dict (ImageNet, or the MS-Celeb-1M
ResNet-18 files of RAN/SCN/DAN) loads key for key. conv4_x is `layer3`, conv5_x is `layer4`.
Nothing is downloaded: the weights start from torchvision's random initialisation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision
from torch import nn

from fermixnet.models.registry import register_model
from fermixnet.models.trunk import Trunk


class ResNetTrunk(Trunk):
    """conv1 .. conv5_x of a torchvision ResNet (no avgpool, no fc).

    Args:
        builder: a torchvision constructor such as `torchvision.models.resnet18`.
    """

    head_prefixes = ("fc.", "feature.")  # torchvision's fc; DREAM/SCN's extra `feature` Linear

    def __init__(self, builder: Callable[..., torchvision.models.ResNet]) -> None:
        super().__init__()
        net = builder(weights=None)
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3  # conv4_x
        self.layer4 = net.layer4  # conv5_x
        c5 = net.fc.in_features
        self.channels = (c5 // 2, c5)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the conv4_x and conv5_x maps (see `Trunk.forward_features`)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer2(self.layer1(x))  # (B, C4/2, H/8, W/8)
        f4 = self.layer3(x)  # (B, C4, H/16, W/16)
        f5 = self.layer4(f4)  # (B, C5, H/32, W/32)
        return f4, f5

    def conv5_module(self) -> nn.Module:
        """`layer4`, whose output is conv5_x."""
        return self.layer4


@register_model("resnet18")
def resnet18() -> ResNetTrunk:
    """ResNet-18 trunk (C4=256, C5=512), the paper's default backbone (Sec. 4.2)."""
    return ResNetTrunk(torchvision.models.resnet18)


@register_model("resnet50")
def resnet50() -> ResNetTrunk:
    """ResNet-50 trunk (C4=1024, C5=2048)."""
    return ResNetTrunk(torchvision.models.resnet50)
