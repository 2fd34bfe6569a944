"""Realistic-occluder training (`aug.occluders`) and the unaligned synthetic preset."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from fermixnet.config import load_config
from fermixnet.data.landmarks import META_KEYS, meta_landmarks
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
    occluder_frame,
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
    """A generated face and its five landmarks in pixels, as the cache converts its columns."""
    image, _, meta = render_sample(0, "train", i, SIZE, synth_preset(preset))
    return image, meta_landmarks({k: str(v) for k, v in meta.items()}, SIZE, SIZE)


def _plain_set(n: int = 4) -> torch.utils.data.Subset:
    images = [torch.from_numpy(_face(i)[0]).permute(2, 0, 1) for i in range(n)]
    items = [(img, i % 7) for i, img in enumerate(images)]
    return torch.utils.data.Subset(items, list(range(n)))


def _landmarks(n: int = 4) -> torch.Tensor:
    return torch.tensor(np.stack([_face(i)[1] for i in range(n)]), dtype=torch.float32)


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
    exact = torch.ones(len(lm), dtype=torch.bool)
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
        frame = occluder_frame(lm[i].numpy())
        (_, eyl), (_, eyr), (mx, my) = frame.eye_l, frame.eye_r, frame.mouth
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


def _manifest_rows(root: Path) -> list[dict[str, str]]:
    with open(root / "manifest.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["split"] == "train"]


def test_engine_landmarks_are_the_cached_ones_of_the_manifest_rows(
    synth_root: Path, tmp_path: Path
) -> None:
    occ = _training_data(synth_root, tmp_path, "aug.occluders.p=1.0")
    rows = _manifest_rows(synth_root)
    cached = occ.sets.train.dataset.datasets[0].cached
    for pos, index in enumerate(occ.sets.train.indices):
        want = meta_landmarks(rows[int(cached.indices[index])], SIZE, SIZE)  # all five, pixels
        np.testing.assert_allclose(occ.sets.train.landmarks[pos].numpy(), want, atol=1e-4)


def test_occluders_follow_the_cached_landmarks_of_turned_and_moved_faces(tmp_path: Path) -> None:
    """A manifest with only the five documented `lm_*` columns (docs/data.md) of faces turned
    by up to 30 degrees, moved and scaled (the unaligned preset): each drawn mask covers its
    face's mouth and the point between nose tip and mouth, and neither eye."""
    root = tmp_path / "d"
    generate_synthetic(root, seed=1, size=SIZE, counts={"train": 14, "val": 0, "test": 0},
                       config=synth_preset("unaligned"))
    with open(root / "manifest.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    keep = [k for k in table[0] if not k.startswith("lm_") or k in META_KEYS]
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, keep, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)
    occ = _training_data(root, tmp_path, "aug.occluders.p=1.0", "aug.occluders.families=[mask]")
    assert occ.sets.train.exact.all()  # the manifest's own points
    occ.sets.train.transform = None  # the occluded cached image, before flip and crop
    occ.set_epoch(0)
    rows, cached = _manifest_rows(root), occ.sets.train.dataset.datasets[0].cached
    for pos, index in enumerate(occ.sets.train.indices):
        changed = (occ.sets.train[pos][0] != occ.sets.plain[pos][0]).any(0).numpy()
        eye_l, eye_r, nose, mouth_l, mouth_r = meta_landmarks(
            rows[int(cached.indices[index])], SIZE, SIZE)
        mouth = (mouth_l + mouth_r) / 2
        for point, covered in ((mouth, True), ((nose + mouth) / 2, True), (eye_l, False),
                               (eye_r, False)):
            x, y = np.round(point).astype(int)
            if 0 <= x < SIZE and 0 <= y < SIZE:
                assert changed[y, x] == covered, (pos, point, covered)


def test_engine_without_landmarks_uses_the_framing_template(make_manifest, tmp_path) -> None:
    root = make_manifest(tmp_path / "d", per_class=2, size=SIZE)
    occ = _training_data(root, tmp_path, "aug.occluders.p=1.0")
    assert not occ.sets.train.exact.any()
    assert np.allclose(occ.sets.train.landmarks[:, 0], [0.335 * SIZE, 0.405 * SIZE],
                       atol=0.05)  # RAF-DB's template, in pixels
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
