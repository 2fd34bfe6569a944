"""Cutout, CutMix and Mixup (Fig. 8 baselines) share FERMix's interface."""

import pytest
import torch

from fermixnet.augment import CutMix, Cutout, MixParams, Mixup, build_mixer, one_hot


def batch():
    x = torch.stack([torch.full((1, 8, 8), 2.0), torch.full((1, 8, 8), 4.0)])
    return x, one_hot(torch.tensor([0, 1]), 3)


def test_cutout_zeroes_a_clipped_square_and_keeps_labels():
    x, y = batch()
    params = MixParams("cutout", torch.arange(2), 1.0, boxes=torch.tensor([[0.5, 0.5], [0.0, 0.0]]))
    out, y_out = Cutout(size_frac=0.5).apply(x, y, params)
    assert out[0, 0, 2:6, 2:6].eq(0).all() and (out[0] == 0).sum() == 16  # centred 4x4 square
    assert (out[1] == 0).sum() == 4 and out[1, 0, :2, :2].eq(0).all()  # clipped at the corner
    assert torch.equal(y_out, y)


def test_cutmix_box_and_lambda_from_area():
    x, y = batch()
    params = MixParams("cutmix", torch.tensor([1, 0]), 0.75,
                       boxes=torch.tensor([[0.25, 0.25, 0.5, 0.5]]))
    out, y_out = CutMix().apply(x, y, params)
    assert out[0, 0, :4, :4].eq(4).all() and (out[0] == 4).sum() == 16
    assert torch.allclose(y_out[0], torch.tensor([0.75, 0.25, 0.0]))


def test_mixup_is_linear_in_images_and_labels():
    x, y = batch()
    out, y_out = Mixup().apply(x, y, MixParams("mixup", torch.tensor([1, 0]), 0.3))
    assert torch.allclose(out[0], torch.full((1, 8, 8), 0.3 * 2 + 0.7 * 4))
    assert torch.allclose(y_out[0], torch.tensor([0.3, 0.7, 0.0]))


@pytest.mark.parametrize("name", ["cutout", "cutmix", "mixup", "fermix"])
def test_same_interface_and_seeded(name):
    x, y = torch.randn(4, 3, 16, 16), one_hot(torch.tensor([0, 1, 2, 0]), 3)
    mixer = build_mixer(name)
    a = mixer(x, y, generator=torch.Generator().manual_seed(3))
    b = mixer(x, y, generator=torch.Generator().manual_seed(3))
    assert a[0].shape == x.shape and a[1].shape == y.shape
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.allclose(a[1].sum(1), torch.ones(4))


def test_build_mixer_errors():
    assert build_mixer("none") is None
    with pytest.raises(ValueError, match="unknown mix method 'gridmask'"):
        build_mixer("gridmask")
    with pytest.raises(ValueError, match="bad arguments"):
        build_mixer("mixup", beta=1.0)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        Mixup(alpha=0)
