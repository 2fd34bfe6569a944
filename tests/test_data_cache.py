"""The uint8 memmap cache: built once, reused, rebuilt on change, safe to interrupt."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from data_replicas import make_folder_tree, write_corrupt
from fermixnet.data import create_dataset
from fermixnet.data import imageio as imageio_mod
from fermixnet.data.cache import build_cache, default_cache_dir
from fermixnet.data.cached import ImageTensorDataset


@pytest.fixture
def dataset(tmp_path):
    make_folder_tree(tmp_path / "data", {"train": {"happy": 3, "sad": 2}})
    return create_dataset("folder", tmp_path / "data", "train")


def test_cache_contents_match_decoded_images(dataset, tmp_path):
    cached = build_cache(dataset, (12, 10), tmp_path / "cache")
    assert cached.images.shape == (5, 12, 10, 3) and cached.images.dtype == np.uint8
    np.testing.assert_array_equal(cached.image(3), dataset.load(3))  # same size: no resize
    assert cached.labels.tolist() == dataset.labels().tolist()
    batch = cached.batch(torch.tensor([4, 0]))
    assert batch.shape == (2, 3, 12, 10) and batch.dtype == torch.uint8
    np.testing.assert_array_equal(batch[0].permute(1, 2, 0).numpy(), dataset.load(4))
    assert cached.tensor().shape == (5, 3, 12, 10)


def test_cache_is_reused_without_decoding(dataset, tmp_path, monkeypatch):
    first = build_cache(dataset, 8, tmp_path / "cache")
    mtime = first.path.stat().st_mtime_ns

    def no_decode(path):
        raise AssertionError(f"decoded {path} although the cache is valid")

    monkeypatch.setattr(imageio_mod, "read_rgb", no_decode)
    monkeypatch.setattr("fermixnet.data.base.read_rgb", no_decode)
    again = build_cache(dataset, 8, tmp_path / "cache")
    assert again.path == first.path and again.path.stat().st_mtime_ns == mtime


def test_cache_rebuilt_when_a_source_changes(dataset, tmp_path):
    first = build_cache(dataset, 8, tmp_path / "cache")
    old = first.image(0).copy()
    path = dataset.samples[0].path
    from PIL import Image

    Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(path)
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse file systems
    second = build_cache(dataset, 8, tmp_path / "cache")
    assert second.path != first.path and not first.path.exists()  # stale cache removed
    assert (second.image(0) == 0).all() and not (old == 0).all()


def test_interrupted_build_leaves_no_cache(dataset, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = dataset.load

    def flaky(i):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(i)

    monkeypatch.setattr(dataset, "load", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_cache(dataset, 8, tmp_path / "cache", workers=1)
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.setattr(dataset, "load", real)
    assert len(build_cache(dataset, 8, tmp_path / "cache")) == 5


def test_cache_skip_bad_images(tmp_path):
    make_folder_tree(tmp_path / "data", {"train": {"happy": 2}})
    write_corrupt(tmp_path / "data" / "train" / "happy" / "9.png")
    ds = create_dataset("folder", tmp_path / "data", "train")
    with pytest.raises(ValueError, match="cannot decode image"):
        build_cache(ds, 8, tmp_path / "cache")
    cached = build_cache(ds, 8, tmp_path / "cache", on_error="skip")
    assert len(cached) == 2 and cached.skipped[0][0] == 2
    assert ImageTensorDataset(cached)[1][0].shape == (3, 8, 8)


def test_tensor_dataset_transform_and_pickling(dataset, tmp_path):
    cached = build_cache(dataset, 8, tmp_path / "cache")
    torch_ds = ImageTensorDataset(cached, transform=lambda x: x.flip(-1))
    image, label = torch_ds[0]
    assert image.dtype == torch.uint8 and label == int(dataset.labels()[0])
    torch.testing.assert_close(image, cached.batch([0])[0].flip(-1))
    clone = pickle.loads(pickle.dumps(ImageTensorDataset(cached)))
    assert clone.cached._images is None  # the memmap is reopened, not pickled
    torch.testing.assert_close(clone[0][0], cached.batch([0])[0])


def test_cache_never_inside_data_folder(dataset, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="inside the data folder"):
        build_cache(dataset, 8, tmp_path / "data" / "cache")
    monkeypatch.setenv("FERMIXNET_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert build_cache(dataset, 8).path.parent == tmp_path / "env"


def test_variants_of_a_data_set_keep_their_own_caches(dataset, tmp_path):
    whole = build_cache(dataset, 8, tmp_path / "cache")
    part = build_cache(dataset.subset([0, 1]), 8, tmp_path / "cache")
    assert whole.path != part.path and whole.path.exists() and part.path.exists()
    assert len(part) == 2 and part.labels.tolist() == dataset.labels()[:2].tolist()
    assert build_cache(dataset, 8, tmp_path / "cache").path == whole.path
