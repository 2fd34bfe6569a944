"""FERMixNet: shapes, decision fusion, the no-branch baseline, gradients, registry errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fermixnet.models import FERMixNet, FERMixNetOutput, create_model, list_models


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_list_models_has_the_three_trunks() -> None:
    assert {"resnet18", "resnet50", "ir50"} <= set(list_models())
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize(
    ("arch", "size", "c4", "s4"),
    [("resnet18", 64, 256, 4), ("resnet50", 64, 1024, 4), ("ir50", 112, 256, 14)],
)
def test_output_and_feature_shapes(arch: str, size: int, c4: int, s4: int) -> None:
    model = create_model(arch, num_classes=7).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        f4, f5 = model.forward_features(x)
        out = model(x)
    assert f4.shape == (2, c4, s4, s4)
    assert f5.shape[2:] == (s4 // 2, s4 // 2)
    assert isinstance(out, FERMixNetOutput)
    assert out.high.shape == out.mid.shape == (2, 7)
    assert model.arch == arch and model.num_classes == 7 and model.mid_branch


def test_logits_are_high_plus_mid() -> None:
    model = create_model("resnet18", num_classes=8).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        fused = model.forward_logits(x)
        logits, high, mid = model.forward_export(x)
    assert not torch.allclose(out.high, out.mid)
    torch.testing.assert_close(out.logits, out.high + out.mid)
    torch.testing.assert_close(fused, out.logits)
    torch.testing.assert_close(logits, out.logits)
    torch.testing.assert_close(high, out.high)
    torch.testing.assert_close(mid, out.mid)


def test_mid_branch_pools_with_global_max() -> None:
    """Eq. 6: F_mid = GMP(ReLU(Conv6(F))), global MAX pooling; the average would differ."""
    from fermixnet.models import MidBranch

    torch.manual_seed(0)
    branch = MidBranch(4, 3).eval()
    f4 = torch.randn(2, 4, 5, 5)  # (B, C, h, w) conv4_x map
    with torch.no_grad():
        act = torch.relu(branch.conv(f4))
        expected = branch.fc(act.amax(dim=(2, 3)))  # (B, C) -> (B, K)
        average = branch.fc(act.mean(dim=(2, 3)))
        got = branch(f4)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, average, atol=1e-3)


def test_forward_head_matches_forward() -> None:
    model = create_model("resnet18", num_classes=7).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model.forward_head(*model.forward_features(x))
        ref = model(x)
    torch.testing.assert_close(out.logits, ref.logits)


def test_no_mid_branch_is_plain_backbone() -> None:
    model = create_model("resnet18", num_classes=7, mid_branch=False).eval()
    assert model.mid is None and not model.mid_branch
    assert not any(k.startswith("mid.") for k in model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        logits, high, mid = model.forward_export(x)
    assert out.mid is None
    assert torch.equal(out.logits, out.high)
    assert torch.equal(logits, high) and torch.count_nonzero(mid) == 0
    assert set(model.feature_layers()) == {"high"}


def test_gradients_reach_both_heads_and_trunk() -> None:
    model = create_model("resnet18", num_classes=7)
    out = model(torch.randn(4, 3, 32, 32))
    loss = out.high.logsumexp(1).mean() + out.mid.logsumexp(1).mean()
    loss.backward()
    for name in ("fc.weight", "mid.conv.weight", "mid.fc.weight", "trunk.conv1.weight",
                 "trunk.layer3.0.conv1.weight", "trunk.layer4.1.conv2.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_feature_layers_outputs() -> None:
    model = create_model("resnet18", num_classes=7).eval()
    layers = model.feature_layers()
    seen: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, n=n: seen.__setitem__(n, o))
             for n, m in layers.items()]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        f4, f5 = model.forward_features(x)
        model(x)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(seen["high"], f5)
    torch.testing.assert_close(seen["mid"], torch.relu(model.mid.conv(f4)))


def test_channels_last_and_autocast() -> None:
    model = create_model("resnet18", num_classes=7).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x).logits
        cl = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            amp = model(x).logits
    torch.testing.assert_close(cl.logits, ref, rtol=1e-4, atol=1e-4)
    assert amp.shape == (2, 7) and torch.isfinite(amp).all()


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")  # trace is deprecated
@pytest.mark.parametrize("mid_branch", [True, False])
def test_export_wrapper_traces_and_exports(mid_branch: bool) -> None:
    from fermixnet.models import ExportWrapper

    model = create_model("resnet18", num_classes=7, mid_branch=mid_branch).eval()
    wrapper = ExportWrapper(model).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = model(x).logits
        traced = torch.jit.trace(wrapper, x)
        exported = torch.export.export(wrapper, (x,)).module()
        for fn in (traced, exported):
            logits, high, mid = fn(x)
            torch.testing.assert_close(logits, ref)
            torch.testing.assert_close(high + mid, logits)


def test_torch_compile_fullgraph() -> None:
    model = create_model("ir50", num_classes=7).eval()
    x = torch.randn(1, 3, 32, 32)  # global pooling: any size works
    compiled = torch.compile(model, backend="eager", fullgraph=True)  # dynamo only: fast on CPU
    with torch.no_grad():
        out = compiled(x)
        torch.testing.assert_close(out.logits, model(x).logits)
    assert isinstance(out, FERMixNetOutput)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_export_matches_onnxruntime(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from fermixnet.models import ExportWrapper

    model = create_model("resnet18", num_classes=7).eval()
    x = torch.randn(2, 3, 32, 32)
    path = tmp_path / "model.onnx"
    torch.onnx.export(ExportWrapper(model), (x,), str(path), input_names=["input"],
                      output_names=["logits", "high", "mid"], dynamo=False,
                      dynamic_axes={"input": {0: "batch"}})
    assert not model.training  # the exporter must not flip the model back to training mode
    got = ort.InferenceSession(str(path)).run(None, {"input": x[:1].numpy()})
    with torch.no_grad():
        ref = model(x[:1])
    torch.testing.assert_close(torch.from_numpy(got[0]), ref.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(torch.from_numpy(got[2]), ref.mid, rtol=1e-4, atol=1e-4)


@pytest.mark.cuda
def test_cuda_channels_last_autocast() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    model = create_model("resnet18", num_classes=7).cuda().eval()
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 64, 64, device="cuda").to(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = model(x).logits.float()
        with torch.autocast("cuda", dtype=torch.float16):
            out = model(x)
    assert out.high.dtype == torch.float16
    torch.testing.assert_close(out.logits.float(), ref, rtol=2e-2, atol=2e-2)


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'vgg16'.*resnet18"):
        create_model("vgg16", num_classes=7)


def test_unknown_option_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"'resnet18' does not accept options \['depth'\]"):
        create_model("resnet18", num_classes=7, depth=34)


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, True])
def test_bad_num_classes(bad: object) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        create_model("resnet18", num_classes=bad)  # type: ignore[arg-type]


def test_model_is_fermixnet_with_repr() -> None:
    model = create_model("resnet18", num_classes=7, mid_branch=False)
    assert isinstance(model, FERMixNet)
    assert "mid_branch=False" in repr(model)
