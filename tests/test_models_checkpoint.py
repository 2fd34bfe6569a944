"""Our checkpoint format: model.safetensors + meta.json, atomic, strict, self-describing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fermixnet import __version__
from fermixnet.models import create_model
from fermixnet.models.weights import load_checkpoint, save_checkpoint


def _trained_like(arch: str = "resnet18", **kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(arch, num_classes=7, **kw)
    with torch.no_grad():  # move BN statistics away from defaults so the round trip is meaningful
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_()
    return model


@pytest.mark.parametrize("mid_branch", [True, False])
def test_round_trip_gives_identical_outputs(tmp_path: Path, mid_branch: bool) -> None:
    model = _trained_like(mid_branch=mid_branch).eval()
    path = save_checkpoint(model, tmp_path / "ckpt", {"input_size": 64, "metrics": {"acc": 0.5}})
    assert path == tmp_path / "ckpt" / "model.safetensors"
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["meta.json",
                                                                     "model.safetensors"]
    x = torch.randn(2, 3, 64, 64)
    for src in (tmp_path / "ckpt", path):
        loaded, meta = load_checkpoint(src, device="cpu")
        assert not loaded.training
        with torch.no_grad():
            assert torch.equal(loaded(x).logits, model(x).logits)
        assert meta["arch"] == "resnet18" and meta["num_classes"] == 7
        assert meta["mid_branch"] is mid_branch and loaded.mid_branch is mid_branch
        assert meta["input_size"] == 64 and meta["metrics"] == {"acc": 0.5}
        assert meta["fermixnet_version"] == __version__
        assert meta["classes"][0] == "neutral" and len(meta["classes"]) == 7
        assert meta["mean"] == [0.485, 0.456, 0.406] and meta["std"] == [0.229, 0.224, 0.225]


def test_overwrite_leaves_no_temp_files(tmp_path: Path) -> None:
    model = _trained_like()
    save_checkpoint(model, tmp_path, {})
    save_checkpoint(model, tmp_path, {"config": {"lr": 0.1}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "model.safetensors"]
    assert json.loads((tmp_path / "meta.json").read_text())["config"] == {"lr": 0.1}


def test_meta_contradicting_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        save_checkpoint(_trained_like(), tmp_path, {"num_classes": 8})
    with pytest.raises(ValueError, match="classes"):
        save_checkpoint(_trained_like(), tmp_path, {"classes": ["a", "b"]})
    assert not (tmp_path / "model.safetensors").exists()


def test_class_count_mismatch_names_file_and_field(tmp_path: Path) -> None:
    save_checkpoint(_trained_like(), tmp_path, {})
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["num_classes"] = 8
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"model\.safetensors.*fc\.weight.*'num_classes'"):
        load_checkpoint(tmp_path)


def test_branch_mismatch_names_field(tmp_path: Path) -> None:
    save_checkpoint(_trained_like(mid_branch=False), tmp_path, {})
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["mid_branch"] = True
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="'mid_branch'"):
        load_checkpoint(tmp_path)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        load_checkpoint(tmp_path)
    save_checkpoint(_trained_like(), tmp_path, {})
    (tmp_path / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        load_checkpoint(tmp_path / "model.safetensors")


def test_wrapped_model_is_unwrapped(tmp_path: Path) -> None:
    model = _trained_like()
    wrapper = torch.nn.DataParallel(model)
    save_checkpoint(wrapper, tmp_path, {})
    loaded, _ = load_checkpoint(tmp_path)
    assert set(loaded.state_dict()) == set(model.state_dict())


def test_bad_meta_json(tmp_path: Path) -> None:
    save_checkpoint(_trained_like(), tmp_path, {})
    meta_path = tmp_path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "arch": "vgg16"}))
    with pytest.raises(ValueError, match=r"meta\.json: unknown model 'vgg16'"):
        load_checkpoint(tmp_path)
    meta_path.write_text("{\n  \"arch\": ,\n}")
    with pytest.raises(ValueError, match=r"meta\.json: invalid JSON at line 2"):
        load_checkpoint(tmp_path)
    meta_path.write_text(json.dumps({"arch": "resnet18"}))
    with pytest.raises(ValueError, match="missing field 'num_classes'"):
        load_checkpoint(tmp_path)
