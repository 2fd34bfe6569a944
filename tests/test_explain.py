"""Tests of fermixnet.explain: Grad-CAM maps of both branches, the FERMix pair, the CLI."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from fermixnet.cli import main
from fermixnet.explain import branch_cams, grad_cam, mix_pair
from fermixnet.models.weights import load_checkpoint
from scene_helpers import drawn_face

pytestmark = pytest.mark.usefixtures("_tiny_trunk")


@pytest.fixture(scope="module")
def checkpoint_options():
    return {"input_size": 48, "seed": 3}


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_checkpoint(checkpoint)[0]


def _batch(n: int = 2, size: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, size, size, generator=g)


def test_grad_cam_shape_range_and_target_dependence(model):
    x = _batch()
    layer = model.feature_layers()["high"]
    maps = [grad_cam(model, x, layer, lambda o, c=c: o.high[:, c]) for c in range(3)]
    for m in maps:
        assert m.shape == (2, 48, 48)
        assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
        assert torch.allclose(m.flatten(1).amax(1), torch.ones(2)) or float(m.max()) == 0.0
    assert not torch.allclose(maps[0], maps[1], atol=1e-3)  # the map follows the target class
    assert all(p.grad is None for p in model.parameters())  # no gradients left on the weights


def test_branch_cams_high_and_mid_differ(model):
    cams = branch_cams(model, _batch(1), [4])
    assert set(cams) == {"high", "mid"}
    assert cams["high"].shape == cams["mid"].shape == (1, 48, 48)
    assert not torch.allclose(cams["high"], cams["mid"], atol=1e-3)


def test_grad_cam_agrees_with_pytorch_grad_cam(model):
    """Cross-check against the maintained library (grad-cam, in the test extra)."""
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    class HighLogits(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x).high

    x = _batch(1)
    layer = model.feature_layers()["high"]
    with pgc.GradCAM(model=HighLogits(model), target_layers=[layer]) as cam:
        theirs = cam(input_tensor=x, targets=[ClassifierOutputTarget(2)])[0]
    ours = grad_cam(model, x, layer, lambda o: o.high[:, 2])[0].numpy()
    assert np.corrcoef(theirs.ravel(), ours.ravel())[0, 1] > 0.999


def test_mix_pair_takes_the_region_from_the_partner():
    a, b = torch.zeros(3, 8, 8), torch.ones(3, 8, 8)
    mixed, lam = mix_pair(a, b, "upper")
    assert lam == 0.5
    assert (mixed[:, :4] == 1).all() and (mixed[:, 4:] == 0).all()
    mixed, lam = mix_pair(a, b, "upper_left")
    assert lam == 0.75 and mixed.sum() == 3 * 16


@pytest.mark.slow
def test_explain_cli_writes_both_figures(checkpoint, tmp_path, capsys):
    for i in range(2):
        Image.fromarray(drawn_face(64, i, "sunglasses" if i else None)).save(tmp_path / f"{i}.png")
    out = tmp_path / "cam"
    code = main(["explain", str(tmp_path / "0.png"), "--checkpoint", str(checkpoint), "--out",
                 str(out), "--detector", "aligned", "--mix-with", str(tmp_path / "1.png")])
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[-1] for p in printed] == ["branches.png", "fermix.png"]
    for name in ("branches.png", "fermix.png"):
        with Image.open(out / name) as im:
            assert im.size[0] > 200 and im.size[1] > 100
    if importlib.util.find_spec("cv2") is None:
        return
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(blank)
    assert main(["explain", str(blank), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--detector", "haar"]) == 2
    assert "no face found" in capsys.readouterr().err
