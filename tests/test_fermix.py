"""FERMix (Eqs. 1-5): exact pixels and labels per region, sampling frequencies, determinism."""

import pytest
import torch

from fermixnet.augment import DEFAULT_PROBS, REGIONS, FERMix, MixParams, one_hot, pattern_probs

H = W = 4
SWAP = torch.tensor([1, 0])


def batch():
    x = torch.stack([torch.zeros(3, H, W), torch.ones(3, H, W)])  # image 0 all 0, image 1 all 1
    return x, one_hot(torch.tensor([2, 5]), 7)


# Hand-written masks: 1 where pixels come from the partner (region B of Eqs. 1-3).
EXPECTED = {
    "upper": [[1] * 4] * 2 + [[0] * 4] * 2,
    "lower": [[0] * 4] * 2 + [[1] * 4] * 2,
    "left": [[1, 1, 0, 0]] * 4,
    "right": [[0, 0, 1, 1]] * 4,
    "upper_left": [[1, 1, 0, 0]] * 2 + [[0] * 4] * 2,
    "upper_right": [[0, 0, 1, 1]] * 2 + [[0] * 4] * 2,
}
LAMBDA = {"upper": 0.5, "lower": 0.5, "left": 0.5, "right": 0.5, "upper_left": 0.75,
          "upper_right": 0.75}


@pytest.mark.parametrize("region", REGIONS)
def test_each_region_pixels_and_labels(region):
    x, y = batch()
    x_mix, y_mix = FERMix().apply(x, y, MixParams(region, SWAP, LAMBDA[region]))
    mask = torch.tensor(EXPECTED[region], dtype=torch.float32)
    assert torch.equal(x_mix[0], mask.expand(3, H, W))  # image 0 gets 1s from its partner
    assert torch.equal(x_mix[1], (1 - mask).expand(3, H, W))
    lam = LAMBDA[region]
    assert torch.allclose(y_mix[0, 2], torch.tensor(lam))
    assert torch.allclose(y_mix[0, 5], torch.tensor(1 - lam))
    assert torch.allclose(y_mix.sum(1), torch.ones(2))


@pytest.mark.parametrize("region", REGIONS)
def test_sampled_lambda_matches_main_area_share(region):
    mix = FERMix(probs={region: 1.0})
    params = mix.sample(8, generator=torch.Generator().manual_seed(0))
    assert params.region == region
    assert params.lam == LAMBDA[region]
    assert sorted(params.perm.tolist()) == list(range(8))


def test_inputs_are_not_modified_and_identity_perm_is_a_no_op():
    x, y = batch()
    x0, y0 = x.clone(), y.clone()
    x_mix, y_mix = FERMix().apply(x, y, MixParams("upper", torch.arange(2), 0.5))
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert torch.equal(x_mix, x) and torch.allclose(y_mix, y)


def test_odd_size_split_and_exact_lambda():
    x = torch.stack([torch.zeros(1, 5, 5), torch.ones(1, 5, 5)])
    y = one_hot(torch.tensor([0, 1]), 2)
    params = MixParams("upper", SWAP, 0.5)
    x_mix, y_mix = FERMix().apply(x, y, params)
    assert x_mix[0, 0, :2].eq(1).all() and x_mix[0, 0, 2:].eq(0).all()  # first part: 5 // 2 rows
    assert torch.allclose(y_mix[0], torch.tensor([0.5, 0.5]))
    _, y_exact = FERMix(exact_lambda=True).apply(x, y, params)
    assert torch.allclose(y_exact[0], torch.tensor([15 / 25, 10 / 25]))


def test_sampling_frequencies_follow_default_probs():
    mix, g = FERMix(), torch.Generator().manual_seed(123)
    n = 20000
    counts = dict.fromkeys(REGIONS, 0)
    for _ in range(n):
        counts[mix.sample(2, generator=g).region] += 1
    for region, p in DEFAULT_PROBS.items():
        sd = (p * (1 - p) / n) ** 0.5
        assert abs(counts[region] / n - p) < 4 * sd, (region, counts)


def test_subset_probabilities_never_draw_absent_regions():
    mix, g = FERMix(pattern_probs(0.0, 1.0, 0.0)), torch.Generator().manual_seed(0)
    drawn = {mix.sample(4, generator=g).region for _ in range(200)}
    assert drawn == {"left", "right"}


def test_same_seed_same_output():
    x = torch.randn(6, 3, 8, 8)
    y = one_hot(torch.randint(0, 7, (6,)), 7)
    a = FERMix()(x, y, generator=torch.Generator().manual_seed(7))
    b = FERMix()(x, y, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_pattern_probs_split_evenly():
    assert pattern_probs(0.4, 0.4, 0.2) == pytest.approx(DEFAULT_PROBS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probs": {"upper": 0.5, "lower": 0.4}}, "sum to 1"),
        ({"probs": {"diagonal": 1.0}}, "unknown FERMix region"),
        ({"probs": {"upper": 1.5, "lower": -0.5}}, ">= 0"),
    ],
)
def test_bad_probabilities(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FERMix(**kwargs)


def test_bad_inputs():
    mix = FERMix()
    x, y = batch()
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        mix.apply(x[0], y, MixParams("upper", SWAP, 0.5))
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        mix.apply(x, torch.tensor([2, 5]), MixParams("upper", SWAP, 0.5))
    with pytest.raises(ValueError, match="unknown FERMix region"):
        mix.apply(x, y, MixParams("middle", SWAP, 0.5))
    with pytest.raises(ValueError, match="does not match batch"):
        mix.apply(x, y, MixParams("upper", torch.arange(3), 0.5))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.randn(8, 3, 16, 16)
    y = one_hot(torch.randint(0, 7, (8,)), 7)
    params = FERMix().sample(8, generator=torch.Generator().manual_seed(1))
    cpu = FERMix().apply(x, y, params)
    gpu = FERMix().apply(x.cuda(), y.cuda(), params)
    assert torch.equal(cpu[0], gpu[0].cpu()) and torch.allclose(cpu[1], gpu[1].cpu())
