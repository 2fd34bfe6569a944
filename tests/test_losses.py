"""Eq. 9 against a hand computation; the alternate mode of Fig. 5; shape errors."""

import math
from types import SimpleNamespace

import pytest
import torch

from fermixnet.losses import CoTrainingLoss, soft_cross_entropy


def out(high, mid=None):
    return SimpleNamespace(high=torch.tensor(high), mid=None if mid is None else torch.tensor(mid))


def ce(logits, target):
    """Hand-written cross-entropy of one sample: -sum y_i log softmax(z)_i."""
    z = sum(math.exp(v) for v in logits)
    return -sum(t * (v - math.log(z)) for v, t in zip(logits, target, strict=True))


MAIN = out([[2.0, 0.0]], [[0.0, 1.0]])
MIX = out([[1.0, 1.0]], [[3.0, 0.0]])
Y = torch.tensor([0])
Y_MIX = torch.tensor([[0.5, 0.5]])


def test_eq9_cotraining_by_hand():
    alpha, beta = 0.3, 0.6
    res = CoTrainingLoss(alpha, beta)(MAIN, Y, MIX, Y_MIX)
    main = beta * ce([2, 0], [1, 0]) + (1 - beta) * ce([0, 1], [1, 0])
    mix = beta * ce([1, 1], [0.5, 0.5]) + (1 - beta) * ce([3, 0], [0.5, 0.5])
    assert res.total.item() == pytest.approx(alpha * mix + (1 - alpha) * main, rel=1e-6)
    assert set(res.terms) == {"main_high", "main_mid", "mix_high", "mix_mid"}
    assert res.terms["mix_mid"].item() == pytest.approx(ce([3, 0], [0.5, 0.5]), rel=1e-6)


def test_eq9_main_only_branch():
    beta = 0.2
    res = CoTrainingLoss(alpha=0.9, beta=beta)(MAIN, Y)
    expected = beta * ce([2, 0], [1, 0]) + (1 - beta) * ce([0, 1], [1, 0])
    assert res.total.item() == pytest.approx(expected, rel=1e-6)
    assert set(res.terms) == {"main_high", "main_mid"}


def test_without_mid_branch_is_plain_cross_entropy():
    res = CoTrainingLoss(beta=0.5)(out([[2.0, 0.0]]), Y)
    assert res.total.item() == pytest.approx(ce([2, 0], [1, 0]), rel=1e-6)


def test_alternate_mode_takes_one_input():
    loss = CoTrainingLoss(beta=0.5, mode="alternate")
    res = loss(None, None, MIX, Y_MIX)
    expected = 0.5 * ce([1, 1], [0.5, 0.5]) + 0.5 * ce([3, 0], [0.5, 0.5])
    assert res.total.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="not both"):
        loss(MAIN, Y, MIX, Y_MIX)


def test_index_and_one_hot_targets_agree():
    logits = torch.randn(5, 7)
    idx = torch.randint(0, 7, (5,))
    soft = torch.nn.functional.one_hot(idx, 7).float()
    assert torch.allclose(soft_cross_entropy(logits, idx), soft_cross_entropy(logits, soft))


def test_errors():
    with pytest.raises(ValueError, match="do not match logits"):
        CoTrainingLoss()(MAIN, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\(1, 2\) probabilities"):
        CoTrainingLoss()(MAIN, Y, MIX, torch.tensor([[0.2, 0.3, 0.5]]))
    with pytest.raises(ValueError, match=r"loss\.alpha"):
        CoTrainingLoss(alpha=1.5)
    with pytest.raises(ValueError, match="main output, the mixed output"):
        CoTrainingLoss()(None, None)
