"""Landmark-placed FERMix: regions land on the face's own parts even when the face is turned.

Faces here are painted patches at planted landmarks, each point of each face with its own value,
so the mixed image says which face and which part every landmark position came from.
"""

import numpy as np
import pytest
import torch

from fermixnet.augment import MIXERS, FERMix, LandmarkFERMix, MixParams, build_mixer, one_hot
from fermixnet.augment.landmarks import NAMES, flip_points, rotate_about
from fermixnet.config import MixConfig
from fermixnet.framing import RAFDB_TEMPLATE
from fermixnet.report.plots import mix_sample_columns

S = 64
SWAP = torch.tensor([1, 0])
UPRIGHT = RAFDB_TEMPLATE * S  # (5, 2) pixels of an aligned face


def paint(points: np.ndarray, base: float, size: int = S, radius: float = 3.0) -> torch.Tensor:
    """(1, size, size) image: 0 background, discs of value `base + k` at landmark k."""
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.zeros((size, size), np.float32)
    for k, (x, y) in enumerate(points):
        img[(xx - x) ** 2 + (yy - y) ** 2 <= radius**2] = base + k
    return torch.from_numpy(img)[None]


def value_at(img: torch.Tensor, point) -> float:
    x, y = (round(float(v)) for v in point)
    return float(img[0, y, x])


def pair(angle_a=70.0, angle_b=-25.0, scale_b=0.85):
    """Face A (values 1..5) turned by `angle_a`, face B (values 11..15) turned, shrunk and
    shifted: their landmarks and a batch of the two."""
    a = rotate_about(UPRIGHT, angle_a, (S / 2, S / 2))
    b = rotate_about((UPRIGHT - S / 2) * scale_b + S / 2 + [3, -2], angle_b, (S / 2, S / 2))
    x = torch.stack([paint(a, 1), paint(b, 11)])
    pts = torch.tensor(np.stack([a, b]), dtype=torch.float32)
    return x, one_hot(torch.tensor([0, 3]), 7), pts


# Which points of the main face receive the partner's same point, per region.
FROM_PARTNER = {
    "upper": {"eye_l", "eye_r"}, "lower": {"mouth_l", "mouth_r"},
    "left": {"eye_l", "mouth_l"}, "right": {"eye_r", "mouth_r"},
    "upper_left": {"eye_l"}, "upper_right": {"eye_r"},
}
CHECKED = ("eye_l", "eye_r", "mouth_l", "mouth_r")  # the nose lies on the cutting lines


def assert_partners_parts(x_mix: torch.Tensor, pts: torch.Tensor, region: str) -> None:
    """Each face of a swapped `pair` holds the partner's same points where `region` lies in
    its own frame, and its own points elsewhere."""
    for main, base_main, base_partner in ((0, 1, 11), (1, 11, 1)):
        for name in CHECKED:
            k = NAMES.index(name)
            want = (base_partner if name in FROM_PARTNER[region] else base_main) + k
            got = value_at(x_mix[main], pts[main, k])
            assert got == pytest.approx(want, abs=0.3), (region, main, name, got, want)


@pytest.mark.parametrize("region", sorted(FROM_PARTNER))
@pytest.mark.parametrize("angles", [(70.0, -25.0), (0.0, 0.0), (-150.0, 40.0)])
def test_pasted_region_holds_the_partners_same_parts(region, angles):
    x, y, pts = pair(*angles)
    x_mix, _ = LandmarkFERMix().apply(x, y, MixParams(region, SWAP, 0.5), landmarks=pts)
    assert_partners_parts(x_mix, pts, region)


def test_preview_plot_shows_each_faces_own_regions():
    """The run's `plots/mix_samples.png` columns for `fermix_landmarks`, given the batch's
    landmarks: the six regions placed on each turned face, not FERMix's fixed halves."""
    x, _, pts = pair(70.0, -25.0)
    images = (x * 10).to(torch.uint8).expand(-1, 3, -1, -1)  # values 10..50 and 110..150
    cols = dict(mix_sample_columns(images, MixConfig(method="fermix_landmarks"), landmarks=pts))
    assert list(cols) == ["original", *FROM_PARTNER]
    for region in FROM_PARTNER:
        assert_partners_parts(cols[region] * 25.5, pts, region)  # back to the painted values


def test_fixed_regions_miss_a_turned_face():
    """The premise: FERMix's fixed upper half does not hold both eyes of a turned face."""
    x, y, pts = pair(70.0, -25.0)
    x_mix, _ = FERMix().apply(x, y, MixParams("upper", SWAP, 0.5))
    eyes = [value_at(x_mix[0], pts[0, k]) for k in (0, 1)]
    assert eyes != [11.0, 12.0]


def test_same_seed_same_output_and_probabilities():
    x, y, pts = pair()
    mix = LandmarkFERMix()
    outs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(3)
        outs.append(mix.apply(x, y, mix.sample(2, generator=g), landmarks=pts))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for _ in range(20):  # the same draws as FERMix: one seed, one region sequence
        p1, p2 = mix.sample(4, generator=g1), FERMix().sample(4, generator=g2)
        assert p1.region == p2.region and torch.equal(p1.perm, p2.perm)
    only = LandmarkFERMix(probs={"lower": 1.0, "upper": 0.0})  # p=1 / p=0
    g = torch.Generator().manual_seed(0)
    assert {only.sample(4, generator=g).region for _ in range(30)} == {"lower"}


def test_identity_partner_and_inputs_untouched():
    x, y, pts = pair()
    x0 = x.clone()
    x_mix, y_mix = LandmarkFERMix().apply(x, y, MixParams("upper", torch.arange(2), 0.5),
                                          landmarks=pts)
    assert torch.equal(x, x0)
    assert torch.allclose(x_mix, x, atol=1e-4) and torch.allclose(y_mix, y)


def test_lambda_rules():
    x, y, pts = pair(0.0, 0.0)
    for region, lam in (("upper", 0.5), ("left", 0.5), ("upper_right", 0.75)):
        _, y_mix = LandmarkFERMix().apply(x, y, MixParams(region, SWAP, lam), landmarks=pts)
        assert y_mix[0, 0] == pytest.approx(lam) and y_mix[0, 3] == pytest.approx(1 - lam)
    # face_area on an upright aligned 100 px face: the face box is the image, the nose line at
    # y = 58, so rows 0..57 are pasted: lambda = 1 - 58/100 (hand-computed).
    s = 100
    face = torch.tensor(RAFDB_TEMPLATE * s, dtype=torch.float32)
    xs = torch.zeros(2, 1, s, s)
    _, y_mix = LandmarkFERMix(lam_rule="face_area").apply(
        xs, y, MixParams("upper", SWAP, 0.5), landmarks=torch.stack([face, face]))
    assert y_mix[0, 0] == pytest.approx(0.42, abs=1e-6)
    odd = torch.zeros(2, 1, 5, 5)  # fallback rows: the exact pixel share, 1 - 2/5 for `upper`
    _, y_mix = LandmarkFERMix(lam_rule="face_area").apply(odd, y, MixParams("upper", SWAP, 0.5))
    assert y_mix[0, 0] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="lam_rule"):
        LandmarkFERMix(lam_rule="area")


def _bad(kind: str) -> torch.Tensor:
    pts = torch.tensor(UPRIGHT, dtype=torch.float32).clone()
    if kind == "nan":
        pts[2, 0] = float("nan")
    elif kind == "inf":
        pts[0, 1] = float("inf")
    elif kind == "eyes_on_one_point":
        pts[1] = pts[0]
    elif kind == "mirrored":
        pts = torch.as_tensor(flip_points(pts, S))[[1, 0, 2, 4, 3]]  # flipped x, order not swapped
    return pts


@pytest.mark.parametrize("kind", ["none", "nan", "inf", "eyes_on_one_point", "mirrored"])
@pytest.mark.parametrize("region", ["upper", "right", "upper_left"])
def test_fallback_to_fixed_regions(kind, region):
    x, y, pts = pair()
    params = MixParams(region, SWAP, 0.5)
    want = FERMix().apply(x, y, params)
    lm = None if kind == "none" else torch.stack([_bad(kind), pts[1]])
    got = LandmarkFERMix().apply(x, y, params, landmarks=lm)
    # A pair falls back when either face lacks usable landmarks: both rows equal FERMix's.
    assert torch.equal(got[0], want[0]) and torch.allclose(got[1], want[1])


def test_mixed_batch_some_rows_fall_back():
    x, y, pts = pair()
    x4, y4 = torch.cat([x, x]), torch.cat([y, y])
    lm = torch.cat([pts, torch.full((2, 5, 2), float("nan"))])
    perm = torch.tensor([1, 0, 3, 2])
    got, _ = LandmarkFERMix().apply(x4, y4, MixParams("upper", perm, 0.5), landmarks=lm)
    fixed, _ = FERMix().apply(x4, y4, MixParams("upper", perm, 0.5))
    assert torch.equal(got[2:], fixed[2:])
    assert value_at(got[0], pts[0, 0]) == pytest.approx(11, abs=0.3)


def test_bad_inputs_and_registry():
    x, y, pts = pair()
    with pytest.raises(ValueError, match=r"landmarks of shape \(2, 5, 2\)"):
        LandmarkFERMix().apply(x, y, MixParams("upper", SWAP, 0.5), landmarks=pts[:, :4])
    with pytest.raises(ValueError, match="unknown FERMix region"):
        LandmarkFERMix().apply(x, y, MixParams("middle", SWAP, 0.5), landmarks=pts)
    assert MIXERS["fermix_landmarks"] is LandmarkFERMix
    mixer = build_mixer(MixConfig(method="fermix_landmarks", probs={"upper": 1.0},
                                  options={"lam_rule": "face_area"}))
    assert isinstance(mixer, LandmarkFERMix) and mixer.probs["upper"] == 1.0
    assert mixer.lam_rule == "face_area"


# --- end to end: `fermixnet train` hands the batches' landmarks to the mixer ---------------------


@pytest.mark.parametrize(("on_device", "occluders"), [(False, 0.0), (True, 0.0), (False, 1.0)],
                         ids=["workers", "on_device", "occluders"])
def test_train_with_landmark_fermix_writes_a_checkpoint(tmp_path, tiny_config, monkeypatch,
                                                        one_thread, on_device, occluders):
    from fermixnet.cli import main
    from fermixnet.synth.generate import generate_synthetic

    root = tmp_path / "synth"
    generate_synthetic(root, seed=0, size=32, counts={"train": 28, "test": 7})
    seen = []
    apply = LandmarkFERMix.apply

    def spy(self, x, y, params, landmarks=None):
        seen.append(landmarks)
        return apply(self, x, y, params, landmarks)

    monkeypatch.setattr(LandmarkFERMix, "apply", spy)
    cfg = tiny_config(tmp_path, root, epochs=1)
    out = tmp_path / "run"
    sets = ["mix.method=fermix_landmarks", "mix.p_mix=1.0", "train.max_steps_per_epoch=2",
            f"data.on_device={str(on_device).lower()}", f"aug.occluders.p={occluders}"]
    assert main(["train", "--config", str(cfg), "--out", str(out),
                 *[a for s in sets for a in ("--set", s)]]) == 0
    assert (out / "checkpoints" / "last" / "model.safetensors").is_file()
    # first the run's preview plot (six regions on 4 plain training images, before training),
    # then both steps (p_mix = 1), each with its batch's landmarks
    preview, trained = seen[:6], seen[6:]
    for lm in preview:
        assert lm.shape == (4, 5, 2) and torch.isfinite(lm).all()
        assert (lm >= 0).all() and (lm <= 32).all()  # unaugmented
    assert len(trained) == 2
    for lm in trained:
        assert lm is not None and lm.shape == (8, 5, 2) and torch.isfinite(lm).all()
        assert (lm >= -8).all() and (lm <= 32 + 8).all()  # moved by at most the crop padding
