"""Table 1's parameter and MAC counts, and the `fermixnet info` command."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from fermixnet.cli import main
from fermixnet.models import create_model
from fermixnet.models.complexity import count_macs, count_params, format_count


@pytest.mark.parametrize(
    ("mid_branch", "params", "macs"), [(False, "11.18 M", "1.82 G"), (True, "11.25 M", "1.83 G")]
)
def test_table1_resnet18_7_classes_224(mid_branch: bool, params: str, macs: str) -> None:
    model = create_model("resnet18", num_classes=7, mid_branch=mid_branch)
    assert format_count(count_params(model), "M") == params
    assert format_count(count_macs(model, 224), "G") == macs


def test_mid_branch_cost_is_its_layers() -> None:
    with_mid = create_model("resnet18", num_classes=7)
    without = create_model("resnet18", num_classes=7, mid_branch=False)
    # 1x1 conv 256->256 with bias, FC 256->7 with bias.
    assert count_params(with_mid) - count_params(without) == 256 * 256 + 256 + 256 * 7 + 7
    extra = count_macs(with_mid, 64, elementwise=False) - count_macs(without, 64, elementwise=False)
    assert extra == 4 * 4 * (256 * 256 + 256) + 256 * 7 + 7  # conv4_x is 4x4 at 64 px


def test_macs_hand_computed_small_net() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    conv = 8 * 8 * 4 * (3 * 3 * 3)
    assert count_macs(net, 8, elementwise=False) == conv + 4 * 2 + 2
    elementwise = 2 * 256 + 256 + 256  # affine BN, ReLU, pool over (4, 8, 8)
    assert count_macs(net, (8, 8)) == conv + 4 * 2 + 2 + elementwise
    assert net.training  # mode restored


def test_count_params_trainable_only() -> None:
    net = nn.Linear(3, 2)
    net.bias.requires_grad_(False)
    assert count_params(net) == 8 and count_params(net, trainable_only=True) == 6


def test_macs_scale_with_input_and_errors() -> None:
    model = create_model("resnet18", num_classes=7, mid_branch=False)
    assert count_macs(model, 64, elementwise=False) < count_macs(model, 128, elementwise=False)
    with pytest.raises(ValueError, match="input_size"):
        count_macs(model, 0)
    with pytest.raises(ValueError, match="unit"):
        format_count(1, "K")
    assert torch.is_grad_enabled()


def test_info_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--model", "resnet18", "--num-classes", "7", "--no-mid", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) == {"model", "num_classes", "mid_branch", "input_size", "params", "macs"}
    assert info["model"] == "resnet18" and info["mid_branch"] is False
    assert info["input_size"] == 224 and round(info["params"] / 1e6, 2) == 11.18
    assert round(info["macs"] / 1e9, 2) == 1.82


def test_info_cli_text_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--model", "resnet18", "--input-size", "112"]) == 0
    out = capsys.readouterr().out
    assert "11.25 M" in out and "input_size   112" in out and "mid_branch   True" in out
    assert main(["info", "--list"]) == 0
    assert capsys.readouterr().out.split() == ["ir50", "resnet18", "resnet50"]


def test_info_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--model", "vgg"]) == 2
    assert "unknown model 'vgg'" in capsys.readouterr().err
    assert main(["info", "--num-classes", "1"]) == 2
    assert "num_classes" in capsys.readouterr().err
