"""IR-50 trunk: the ArcFace improved-residual ResNet-50 in face.evoLVe's layout (Sec. 4.2, 4.7).

Parameter names follow face.evoLVe's `Backbone(input_size, 50, "ir")` so its flat checkpoint
(`input_layer.*`, `body.N.*`) loads one to one; its `output_layer` (BN, dropout, flatten, FC to a
512-d embedding of a fixed 7x7 or 14x14 map) is dropped in favour of FERMixNet's pooled heads, which
is why 112 and 224 px inputs both work. Units per stage: [3, 4, 14, 3], channels 64, 128, 256, 512,
each stage starting with a stride-2 unit. conv4_x is the 14-unit stage (`body.7` .. `body.20`),
conv5_x the last three units (`body.21` .. `body.23`).
"""

from __future__ import annotations

import torch
from torch import nn

from fermixnet.models.registry import register_model
from fermixnet.models.trunk import Trunk

# (in_channels, depth, units) per stage, as face.evoLVe's get_blocks(50).
_IR50_STAGES: tuple[tuple[int, int, int], ...] = (
    (64, 64, 3),
    (64, 128, 4),
    (128, 256, 14),
    (256, 512, 3),
)


class BottleneckIR(nn.Module):
    """face.evoLVe's `bottleneck_IR`: BN-conv3x3-PReLU-conv3x3-BN plus a shortcut.

    Args:
        in_channels: input channels.
        depth: output channels.
        stride: stride of the second convolution (and of the shortcut).
    """

    def __init__(self, in_channels: int, depth: int, stride: int) -> None:
        super().__init__()
        if in_channels == depth:
            # A 1x1 max pool with stride is a parameter-free subsampling shortcut.
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, depth, (1, 1), stride, bias=False), nn.BatchNorm2d(depth)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, (3, 3), (1, 1), 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, (3, 3), stride, 1, bias=False),
            nn.BatchNorm2d(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual unit."""
        return self.res_layer(x) + self.shortcut_layer(x)


class IRTrunk(Trunk):
    """IR-50 without its `output_layer`: `input_layer` then the 24-unit `body`.

    Args:
        stages: (in_channels, depth, units) per stage; conv4_x is the third stage.
    """

    head_prefixes = ("output_layer.",)

    def __init__(self, stages: tuple[tuple[int, int, int], ...] = _IR50_STAGES) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, 64, (3, 3), 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64)
        )
        units: list[nn.Module] = []
        for in_channels, depth, count in stages:
            units.append(BottleneckIR(in_channels, depth, 2))
            units.extend(BottleneckIR(depth, depth, 1) for _ in range(count - 1))
        self.body = nn.Sequential(*units)
        # Index of the last conv4_x unit; a plain int so TorchScript treats it as a constant.
        self.conv4_last = sum(count for _, _, count in stages[:3]) - 1
        self.channels = (stages[2][1], stages[3][1])

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the conv4_x and conv5_x maps (see `Trunk.forward_features`)."""
        x = self.input_layer(x)  # (B, 64, H, W): the stem does not downsample
        f4 = x
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i == self.conv4_last:
                f4 = x  # (B, 256, H/8, W/8)
        return f4, x  # conv5_x: (B, 512, H/16, W/16)

    def conv5_module(self) -> nn.Module:
        """The last unit of `body`, whose output is conv5_x."""
        return self.body[len(self.body) - 1]


@register_model("ir50")
def ir50() -> IRTrunk:
    """IR-50 trunk (C4=256, C5=512), the paper's larger backbone (Sec. 4.7)."""
    return IRTrunk()
