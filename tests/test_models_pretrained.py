"""`load_pretrained`: every supported foreign layout, built from random tensors in tmp_path."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torchvision

from fermixnet.models import create_model
from fermixnet.models.weights import load_pretrained, save_checkpoint

# face.evoLVe IR-50 keys and shapes, written out from its Backbone(input_size, 50, "ir") layout
# (not generated from our code), so a renamed module in our trunk fails here.
EVOLVE_IR50_SAMPLES = {
    "input_layer.0.weight": (64, 3, 3, 3),
    "input_layer.1.running_var": (64,),
    "input_layer.2.weight": (64,),
    "body.0.res_layer.0.weight": (64,),
    "body.0.res_layer.1.weight": (64, 64, 3, 3),
    "body.0.res_layer.2.weight": (64,),
    "body.0.res_layer.3.weight": (64, 64, 3, 3),
    "body.0.res_layer.4.bias": (64,),
    "body.3.shortcut_layer.0.weight": (128, 64, 1, 1),
    "body.7.shortcut_layer.1.running_mean": (256,),
    "body.20.res_layer.3.weight": (256, 256, 3, 3),
    "body.21.shortcut_layer.0.weight": (512, 256, 1, 1),
    "body.23.res_layer.4.weight": (512,),
}
EVOLVE_IR50_TRUNK_KEYS = 7 + 24 * 13 + 3 * 6  # stem, 24 units, 3 conv shortcuts (with BN counters)


def _random_like(state: dict[str, torch.Tensor], seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state.items():
        if value.is_floating_point():
            out[key] = torch.randn(value.shape, generator=g)
        else:
            out[key] = torch.randint(0, 100, value.shape, generator=g)
    return out


def _tv_resnet(name: str, num_classes: int = 1000) -> dict[str, torch.Tensor]:
    net = getattr(torchvision.models, name)(weights=None, num_classes=num_classes)
    return _random_like(net.state_dict())


def _evolve_ir50() -> dict[str, torch.Tensor]:
    """A flat face.evoLVe IR-50 state dict: our trunk's tensors plus face.evoLVe's output_layer."""
    trunk = create_model("ir50", num_classes=7).trunk.state_dict()
    head = {  # the real Linear is (512, 512 * 7 * 7); any shape will do since heads are skipped
        "output_layer.0.weight": torch.empty(512),
        "output_layer.0.running_mean": torch.empty(512),
        "output_layer.3.weight": torch.empty(512, 8),
        "output_layer.3.bias": torch.empty(512),
        "output_layer.4.weight": torch.empty(512),
    }
    return _random_like({**trunk, **head})


def _assert_trunk_equals(model: torch.nn.Module, source: dict[str, torch.Tensor], prefix: str = "",
                         skip_suffix: str = "@") -> int:
    own = model.trunk.state_dict()
    checked = 0
    for key, value in own.items():
        if key.endswith(skip_suffix):
            continue
        assert torch.equal(value, source[prefix + key]), key
        checked += 1
    return checked


def _heads_fresh(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    for key, value in model.state_dict().items():
        if key.startswith(("fc.", "mid.")) and key.endswith("weight"):
            assert not torch.equal(value, before[key]), f"{key} was not re-initialised"


def test_torchvision_imagenet_resnet18(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = _tv_resnet("resnet18")
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(source, path)
    model = create_model("resnet18", num_classes=7)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.INFO, logger="fermixnet.models.pretrained"):
        report = load_pretrained(model, path)
    assert _assert_trunk_equals(model, source) == len(model.trunk.state_dict())
    assert report.ok and sorted(report.skipped_head) == ["fc.bias", "fc.weight"]
    assert not report.missing and not report.unexpected and not report.shape_mismatch
    assert len(report.matched) == len(model.trunk.state_dict())
    assert "0 missing" in report.summary and "2 head tensors skipped" in report.summary
    assert report.summary in caplog.text
    _heads_fresh(model, before)


def test_msceleb_wrapped_state_dict_via_create_model(tmp_path: Path) -> None:
    source = _tv_resnet("resnet18", num_classes=12666)  # an MS-Celeb identity classifier
    path = tmp_path / "resnet18_msceleb.pth"
    torch.save({"state_dict": source, "epoch": 40, "arch": "resnet18"}, path)
    model = create_model("resnet18", num_classes=8, pretrained=path)
    _assert_trunk_equals(model, source)
    assert model.fc.weight.shape == (8, 512)


def test_dataparallel_ijba_res18_naive(tmp_path: Path) -> None:
    # DREAM's file used by RAN/SCN: module.-prefixed, an extra `feature` Linear(512, 256), an
    # identity `fc`, and (an old PyTorch file) no BatchNorm num_batches_tracked counters.
    trunk = {k: v for k, v in _tv_resnet("resnet18").items()
             if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    extra = _random_like({"feature.weight": torch.empty(256, 512), "feature.bias": torch.empty(256),
                          "fc.weight": torch.empty(100, 256), "fc.bias": torch.empty(100),
                          "extra_layer.weight": torch.empty(3)}, seed=2)
    state = {f"module.{k}": v for k, v in {**trunk, **extra}.items()}
    path = tmp_path / "ijba_res18_naive.pth.tar"
    torch.save({"state_dict": state, "epoch": 5, "best_prec1": 90.0, "arch": "resnet18"}, path)
    model = create_model("resnet18", num_classes=7, mid_branch=False)
    report = load_pretrained(model, path)
    assert _assert_trunk_equals(model, trunk, skip_suffix="num_batches_tracked") == len(trunk)
    assert sorted(report.skipped_head) == ["fc.bias", "fc.weight", "feature.bias",
                                           "feature.weight"]
    assert report.unexpected == ["extra_layer.weight"] and not report.missing


def test_torchvision_resnet50(tmp_path: Path) -> None:
    source = _tv_resnet("resnet50")
    path = tmp_path / "resnet50.pth"
    torch.save(source, path)
    model = create_model("resnet50", num_classes=7, pretrained=path)
    _assert_trunk_equals(model, source)


def test_evolve_ir50_layout_names() -> None:
    trunk = create_model("ir50", num_classes=7).trunk.state_dict()
    assert len(trunk) == EVOLVE_IR50_TRUNK_KEYS
    for key, shape in EVOLVE_IR50_SAMPLES.items():
        assert tuple(trunk[key].shape) == shape, key


def test_evolve_ir50_file(tmp_path: Path) -> None:
    source = _evolve_ir50()
    path = tmp_path / "backbone_ir50_ms1m_epoch120.pth"
    torch.save(source, path)
    model = create_model("ir50", num_classes=7)
    report = load_pretrained(model, path)
    _assert_trunk_equals(model, source)
    assert len(report.skipped_head) == 5 and all(k.startswith("output_layer.")
                                                 for k in report.skipped_head)


def test_own_safetensors_as_pretrained(tmp_path: Path) -> None:
    torch.manual_seed(3)
    trained = create_model("resnet18", num_classes=7)
    save_checkpoint(trained, tmp_path, {})
    model = create_model("resnet18", num_classes=7, pretrained=tmp_path)  # folder or file
    for key, value in trained.trunk.state_dict().items():
        assert torch.equal(model.trunk.state_dict()[key], value), key
    assert not torch.equal(model.fc.weight, trained.fc.weight)  # heads are never loaded
    assert not torch.equal(model.mid.conv.weight, trained.mid.conv.weight)


def test_wrong_architecture_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "backbone_ir50.pth"
    torch.save(_evolve_ir50(), path)
    with pytest.raises(ValueError, match=r"backbone_ir50\.pth.*'resnet18' trunk.*missing"):
        load_pretrained(create_model("resnet18", num_classes=7), path)
    path50 = tmp_path / "resnet50.pth"
    torch.save(_tv_resnet("resnet50"), path50)
    with pytest.raises(ValueError, match=r"resnet50\.pth.*first problem: .*file \(.*\) vs model"):
        load_pretrained(create_model("resnet18", num_classes=7), path50)


def test_partial_trunk_fails(tmp_path: Path) -> None:
    source = _tv_resnet("resnet18")
    del source["layer4.1.conv2.weight"]
    path = tmp_path / "partial.pth"
    torch.save(source, path)
    model = create_model("resnet18", num_classes=7)
    before = model.trunk.conv1.weight.clone()
    with pytest.raises(ValueError, match=r"partial\.pth.*1 missing.*layer4\.1\.conv2\.weight"):
        load_pretrained(model, path)
    assert torch.equal(model.trunk.conv1.weight, before)  # nothing half-loaded


def test_unsafe_or_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"--set model\.pretrained=PATH"):
        create_model("resnet18", num_classes=7, pretrained=tmp_path / "none.pth")
    path = tmp_path / "pickled_module.pth"
    torch.save({"model": torch.nn.Linear(2, 2)}, path)  # a pickled module: refused, not run
    with pytest.raises(ValueError, match=r"pickled_module\.pth.*weights-only"):
        load_pretrained(create_model("resnet18", num_classes=7), path)
    garbage = tmp_path / "notes.pth"
    garbage.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match=r"notes\.pth: cannot be read"):
        load_pretrained(create_model("resnet18", num_classes=7), garbage)
    empty = tmp_path / "empty.pth"
    torch.save({"epoch": 1}, empty)
    with pytest.raises(ValueError, match=r"empty\.pth: holds no tensors"):
        load_pretrained(create_model("resnet18", num_classes=7), empty)
