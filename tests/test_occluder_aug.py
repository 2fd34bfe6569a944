"""Realistic-occluder training (`aug.occluders`) and the unaligned synthetic preset."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from fermixnet.config import load_config
from fermixnet.engine.distributed import DistInfo
from fermixnet.engine.train_data import TrainingData
from fermixnet.synth.faces import PRESETS, synth_preset
from fermixnet.synth.generate import generate_synthetic, render_sample
from fermixnet.synth.occlude import OCCLUDERS
from fermixnet.synth.occluder_aug import (
    FAMILIES,
    FAMILY_NAMES,
    OccludedTrainSet,
    draw_occluder,
    held_out_families,
    landmark_table,
    occluders_by_type,
    resolve_families,
)

SIZE = 48


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated synthetic set (its manifest has the generator's landmarks)."""
    root = tmp_path_factory.mktemp("synth")
    generate_synthetic(root, seed=0, size=SIZE, counts={"train": 14, "val": 0, "test": 7})
    return root


def _face(i: int = 0, preset: str = "aligned") -> tuple[np.ndarray, np.ndarray]:
    image, _, meta = render_sample(0, "train", i, SIZE, synth_preset(preset))
    return image, landmark_table([{k: str(v) for k, v in meta.items()}])[0]


def _plain_set(n: int = 4) -> torch.utils.data.Subset:
    images = [torch.from_numpy(_face(i)[0]).permute(2, 0, 1) for i in range(n)]
    items = [(img, i % 7) for i, img in enumerate(images)]
    return torch.utils.data.Subset(items, list(range(n)))


def _landmarks(n: int = 4) -> np.ndarray:
    return np.stack([_face(i)[1] for i in range(n)])


def test_families_cover_every_occluder_and_bad_names_are_named() -> None:
    assert {n for names in OCCLUDERS.values() for n in names} == set(FAMILY_NAMES)
    assert FAMILIES["hand"] == ("lower", "left", "right", "corner")
    assert resolve_families(["all"]) == FAMILY_NAMES
    assert resolve_families(["hand", "mask"]) == ("mask", "hand")  # FAMILY_NAMES order
    with pytest.raises(ValueError, match=r"aug\.occluders\.families.*glasses.*sunglasses, hat"):
        resolve_families(["glasses"])
    with pytest.raises(ValueError, match=r"aug\.occluders\.families.*glasses.*expected 'all'"):
        load_config(None, ["aug.occluders.families=[mask,glasses]"])
    with pytest.raises(ValueError, match=r"aug\.occluders\.p"):
        load_config(None, ["aug.occluders.p=1.5"])
    cfg = load_config(None, ["aug.occluders.p=0.5", "aug.occluders.families=[mask,hand]"])
    assert cfg.aug.occluders.p == 0.5 and cfg.aug.occluders.families == ["mask", "hand"]
    assert load_config(None).aug.occluders.p == 0.0  # off by default: the paper's recipes


def test_held_out_families_and_test_types() -> None:
    held = held_out_families(["mask", "hand", "hat"])
    assert held == ("sunglasses", "scarf", "phone", "hair", "eyepatch", "object")
    by_type = occluders_by_type(held)
    assert by_type == {"upper": ("sunglasses",), "lower": ("scarf", "phone"), "left": ("hair",),
                       "right": ("hair",), "corner": ("eyepatch",), "object": ("object",)}
    # A type none of whose occluders is held out is left out of the test.
    assert "upper" not in occluders_by_type(held_out_families(["sunglasses", "hat"]))
    assert held_out_families([]) == FAMILY_NAMES


def test_draw_occluder_draws_only_the_chosen_families() -> None:
    image, lm = _face(0)
    seen = set()
    for k in range(30):
        out, family, kind = draw_occluder(image, lm, ("mask", "hand"), np.random.default_rng(k))
        assert family in ("mask", "hand") and kind in FAMILIES[family]
        assert (out != image).any()
        seen.add((family, kind))
    assert {f for f, _ in seen} == {"mask", "hand"} and len(seen) >= 4  # hand as several types


def test_p0_keeps_images_p1_changes_the_face_only_and_seed_repeats() -> None:
    plain, lm = _plain_set(), _landmarks()
    exact = np.ones(len(lm), bool)
    off = OccludedTrainSet(plain, lm, exact, 0.0, ["all"])
    for i in range(len(plain)):
        assert torch.equal(off[i][0], plain[i][0]) and off[i][1] == plain[i][1]
    on = OccludedTrainSet(plain, lm, exact, 1.0, ["mask"])
    on.set_seed(7)
    for i in range(len(plain)):
        changed = (on[i][0] != plain[i][0]).any(0).numpy()
        assert changed.mean() > 0.03
        # A mask follows the face: the changed pixels lie around the mouth, below the eyes.
        ys, xs = np.nonzero(changed)
        (_, eyl), (_, eyr), (mx, my) = lm[i] * SIZE
        assert abs(np.median(ys) - my) < 0.25 * SIZE and abs(np.median(xs) - mx) < 0.25 * SIZE
        assert np.median(ys) > (eyl + eyr) / 2
    again = OccludedTrainSet(plain, lm, exact, 1.0, ["mask"])
    again.set_seed(7)
    assert all(torch.equal(on[i][0], again[i][0]) for i in range(len(plain)))
    again.set_seed(8)
    assert not all(torch.equal(on[i][0], again[i][0]) for i in range(len(plain)))


def _training_data(root: Path, tmp: Path, *sets: str) -> TrainingData:
    cfg = load_config(None, [f"data.train=manifest:{root}", "data.val_fraction=0",
                             f"data.cache_dir={tmp / 'cache'}", "data.workers=0",
                             f"model.input_size={SIZE}", "train.batch_size=7", *sets])
    return TrainingData(cfg, DistInfo(), torch.device("cpu"))


def _epoch(data: TrainingData, epoch: int) -> torch.Tensor:
    data.set_epoch(epoch)
    return torch.cat([x for x, _ in data.train_batches()])


def test_engine_draws_occluders_by_the_manifest_landmarks_and_repeats(
    synth_root: Path, tmp_path: Path
) -> None:
    plain = _training_data(synth_root, tmp_path)
    assert not isinstance(plain.sets.train, OccludedTrainSet)  # p = 0: the data path unchanged
    occ = _training_data(synth_root, tmp_path, "aug.occluders.p=1.0",
                         "aug.occluders.families=[mask,scarf]")
    assert isinstance(occ.sets.train, OccludedTrainSet)
    assert occ.sets.train.exact.all()  # the generator's own landmarks, not the template
    a, b = _epoch(occ, 0), _epoch(plain, 0)
    assert a.shape == b.shape and not torch.equal(a, b)
    assert torch.equal(a, _epoch(occ, 0))  # a resumed epoch redraws the same occluders
    assert not torch.equal(a, _epoch(occ, 1))


def test_engine_landmarks_match_the_manifest_rows(synth_root: Path, tmp_path: Path) -> None:
    occ = _training_data(synth_root, tmp_path, "aug.occluders.p=1.0")
    with open(synth_root / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train"]
    cached = occ.sets.train.dataset.datasets[0].cached
    for pos, index in enumerate(occ.sets.train.indices):
        row = rows[int(cached.indices[index])]
        assert occ.sets.train.landmarks[pos, 2, 1] == pytest.approx(float(row["lm_mouth_y"]),
                                                                    abs=1e-4)


def test_engine_without_landmarks_uses_the_framing_template(make_manifest, tmp_path) -> None:
    root = make_manifest(tmp_path / "d", per_class=2, size=SIZE)
    occ = _training_data(root, tmp_path, "aug.occluders.p=1.0")
    assert not occ.sets.train.exact.any()
    assert np.allclose(occ.sets.train.landmarks[:, 0], [0.335, 0.405], atol=1e-3)  # RAF-DB's
    with pytest.raises(ValueError, match=r"data\.on_device=false"):
        _training_data(root, tmp_path, "aug.occluders.p=0.5", "data.on_device=true")


def test_unaligned_preset_moves_the_face_and_its_landmarks_follow() -> None:
    assert synth_preset("aligned") == synth_preset()
    cfg = synth_preset("unaligned")
    assert (cfg.rotation, cfg.shift, cfg.scale) == (30.0, 0.15, (0.75, 1.15))
    with pytest.raises(ValueError, match=r"unknown synthetic preset 'tilted'.*aligned, unaligned"):
        synth_preset("tilted")
    assert set(PRESETS) == {"aligned", "unaligned"}
    rolls, hits = [], 0
    for i in range(12):
        image, _, meta = render_sample(3, "train", i, 96, cfg)
        rolls.append(abs(meta["roll"]))
        for eye in ("eye_l", "eye_r"):
            x, y = round(meta[f"lm_{eye}_x"] * 96), round(meta[f"lm_{eye}_y"] * 96)
            if not (2 <= x < 94 and 2 <= y < 94):
                continue
            # An eye: the darkest pixel (pupil) of a 5x5 window at the landmark is much darker
            # than the window's mean (skin and eye white around it).
            patch = image[y - 2:y + 3, x - 2:x + 3].mean(axis=2)
            hits += patch.min() < 0.6 * patch.mean()
    assert max(rolls) > 15  # unaligned: rolled well beyond the aligned preset's 10 degrees
    assert hits >= 18  # of up to 24 eyes: the landmarks land on the eyes
