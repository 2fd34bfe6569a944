"""Fast unit tests of the engine: training step, metrics, checkpoints, SAM, transforms."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from fermixnet.augment import FERMix
from fermixnet.augment.transforms import build_transform
from fermixnet.engine import checkpoint as ckpt
from fermixnet.engine.evaluate import (
    ModelInputs,
    classification_metrics,
    compute_eval_result,
    evaluate,
)
from fermixnet.engine.loop import (
    EpochContext,
    TrainingDivergedError,
    forward_loss,
    make_step_batch,
    split_output,
    train_one_epoch,
)
from fermixnet.engine.sam import SAM
from fermixnet.losses import CoTrainingLoss
from fermixnet.models import FERMixNetOutput, create_model

pytestmark = pytest.mark.usefixtures("one_thread")


class TwoHead(nn.Module):
    """A tiny two-head model without batch statistics, counting its forward calls."""

    def __init__(self, k: int = 3, mid: bool = True) -> None:
        super().__init__()
        self.high = nn.Linear(3 * 4 * 4, k)
        self.mid = nn.Linear(3 * 4 * 4, k) if mid else None
        self.batches: list[int] = []

    def forward(self, x):
        self.batches.append(x.shape[0])
        f = x.flatten(1)
        return FERMixNetOutput(self.high(f), None if self.mid is None else self.mid(f))


def _ctx(model, p_mix=1.0, cotrain=True, seed=0, **kw) -> EpochContext:
    return EpochContext(
        criterion=CoTrainingLoss(0.5, 0.5, mode="cotrain" if cotrain else "alternate"),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), device=torch.device("cpu"),
        mean=torch.zeros(1, 3, 1, 1), std=torch.ones(1, 3, 1, 1), num_classes=3,
        mixer=FERMix(), p_mix=p_mix,
        generator=torch.Generator().manual_seed(seed), log_every=1, **kw)


def test_p_mix_gates_the_mixed_batch_and_is_seeded():
    x, y = torch.rand(4, 3, 4, 4), torch.tensor([0, 1, 2, 0])
    model = TwoHead()
    assert make_step_batch(x, y, _ctx(model, p_mix=0.0)).x_mix is None
    assert make_step_batch(x, y, _ctx(model, p_mix=1.0)).x_mix is not None
    draws = [[make_step_batch(x, y, c).x_mix is not None for _ in range(20)]
             for c in (_ctx(model, 0.5, seed=1), _ctx(model, 0.5, seed=1))]
    assert draws[0] == draws[1] and 0 < sum(draws[0]) < 20


def test_cotraining_runs_one_forward_over_main_and_mixed():
    torch.manual_seed(0)
    model, x, y = TwoHead(), torch.rand(4, 3, 4, 4), torch.tensor([0, 1, 2, 0])
    b = make_step_batch(x, y, _ctx(model))
    res, main = forward_loss(model, b, CoTrainingLoss())
    assert model.batches == [8]  # ONE forward over cat([x, x_mix])
    ref_main, ref_mix = model(x), model(b.x_mix)
    torch.testing.assert_close(main.logits, ref_main.logits)
    expected = CoTrainingLoss()(ref_main, y, ref_mix, b.y_mix).total
    torch.testing.assert_close(res.total, expected)
    assert set(res.terms) == {"main_high", "main_mid", "mix_high", "mix_mid"}


def test_without_cotraining_the_mixed_batch_trains_alone():
    model, x, y = TwoHead(), torch.rand(4, 3, 4, 4), torch.tensor([0, 1, 2, 0])
    b = make_step_batch(x, y, _ctx(model, cotrain=False))
    res, main = forward_loss(model, b, CoTrainingLoss(mode="alternate"))
    assert main is None and model.batches == [4] and set(res.terms) == {"mix_high", "mix_mid"}


def test_split_output_keeps_fusion():
    out = FERMixNetOutput(torch.arange(12.0).view(6, 2), torch.ones(6, 2))
    part = split_output(out, slice(0, 3))
    torch.testing.assert_close(part.logits, out.logits[:3])
    assert split_output(FERMixNetOutput(torch.ones(4, 2)), slice(2, None)).mid is None


def test_train_one_epoch_stops_on_nan():
    model = TwoHead()
    data = [(torch.randint(0, 256, (4, 3, 4, 4), dtype=torch.uint8), torch.tensor([0, 1, 2, 0]))
            for _ in range(3)]
    end = train_one_epoch(model, data, _ctx(model), epoch=0, global_step=0)
    stats = end.metrics()
    assert end.progress.step == 3 and not end.stopped
    assert stats["train_loss"] > 0 and stats["images_per_s"] > 0
    with torch.no_grad():
        model.high.weight.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="nan"):
        train_one_epoch(model, data, _ctx(model), epoch=1, global_step=3)


def test_epoch_lr_is_the_rate_of_its_last_step():
    """metrics.csv's lr: a warm-up epoch reports its last step's rate, not its first's."""
    model = TwoHead()
    data = [(torch.randint(0, 256, (4, 3, 4, 4), dtype=torch.uint8), torch.tensor([0, 1, 2, 0]))
            for _ in range(4)]
    ctx = _ctx(model, p_mix=0.0)
    ctx.scheduler = torch.optim.lr_scheduler.LambdaLR(ctx.optimizer, lambda s: (s + 1) / 10)
    end = train_one_epoch(model, data, ctx, epoch=0, global_step=0)
    assert end.progress.lr == pytest.approx(0.1 * 4 / 10)  # steps use 0.01, 0.02, 0.03, 0.04
    assert ctx.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 5 / 10)  # the next step's


def test_a_stopped_epoch_returns_its_progress_and_resumes_to_the_same_totals():
    """`ctx.stop` ends the epoch at a step boundary as a return value (no exception); the
    progress it returns finishes the epoch with the sums and weights of an uninterrupted one."""
    data = [(torch.randint(0, 256, (4, 3, 4, 4), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(i)), torch.tensor([0, 1, 2, 0]))
            for i in range(5)]

    def run(stop_after: int | None):
        torch.manual_seed(0)
        model = TwoHead()
        ctx = _ctx(model, p_mix=0.5, seed=3)
        if stop_after is None:
            return model, train_one_epoch(model, data, ctx, epoch=0, global_step=0)
        ctx.stop = lambda: len(model.batches) >= stop_after  # co-training: one forward a step
        first = train_one_epoch(model, data[:], ctx, epoch=0, global_step=0)
        assert first.stopped and 0 < first.progress.step < len(data)
        assert first.progress.totals.steps == first.progress.step
        ctx.stop = None
        rest = data[first.progress.step:]
        return model, train_one_epoch(model, rest, ctx, epoch=0, global_step=first.progress.step,
                                      start=first.progress)

    whole_model, whole = run(None)
    part_model, resumed = run(3)
    assert not whole.stopped and not resumed.stopped
    assert resumed.progress.step == whole.progress.step == 5
    assert resumed.progress.totals.to_list() == whole.progress.totals.to_list()
    t = whole.progress.totals
    assert (t.steps, t.seen) == (5, 20)  # every step trained the main batch (co-training)
    assert whole.metrics()["train_loss"] == pytest.approx(float(t.loss_sum) / 5)
    assert whole.metrics()["train_acc"] == pytest.approx(float(t.correct) / 20)
    for a, b in zip(whole_model.parameters(), part_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_classification_metrics_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    m = classification_metrics(pred, labels, ["a", "b", "c", "d"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)  # d is absent
    assert m["per_class"] == {"a": 0.5, "b": pytest.approx(2 / 3), "c": 1.0, "d": None}
    assert m["confusion"][1] == [1, 2, 0, 0] and sum(map(sum, m["confusion"])) == 6


def test_eval_result_per_head_and_subset():
    labels = torch.tensor([0, 1, 1, 0])
    high = torch.tensor([[2.0, 0], [0, 2], [2, 0], [2, 0]])
    res = compute_eval_result("t", {"fused": high, "high": high}, labels, ["x", "y"],
                              {"occluded": [2, 3]})
    assert set(res.heads) == {"fused", "high"}
    assert res.accuracy() == 0.75 and res.accuracy("fused", "occluded") == 0.5


def test_evaluate_fuses_high_and_mid_at_the_decision():
    """Sec. 3.4: the `fused` head is high + mid; here the heads disagree, so `fused` != `high`."""
    torch.manual_seed(1)
    model = TwoHead(k=3).eval()
    with torch.no_grad():
        model.mid.weight.mul_(3.0)  # the mid head outvotes the high head on some images
    images = torch.randint(0, 256, (12, 3, 4, 4), dtype=torch.uint8)
    labels = torch.randint(0, 3, (12,))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, labels, torch.arange(12)), batch_size=5)
    inputs = ModelInputs(torch.device("cpu"), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    res = evaluate(model, loader, inputs, classes=["a", "b", "c"])
    with torch.no_grad():
        out = model(images.float() / 255)
    accuracy = {name: float((logits.argmax(1) == labels).float().mean())
                for name, logits in (("fused", out.high + out.mid), ("high", out.high))}
    assert accuracy["fused"] != accuracy["high"]  # the data tell the heads apart
    assert res.accuracy("fused") == pytest.approx(accuracy["fused"])
    assert res.accuracy("high") == pytest.approx(accuracy["high"])


def test_checkpoint_survives_an_interrupted_swap(tmp_path):
    model = create_model("resnet18", num_classes=7, mid_branch=False)
    root = tmp_path / "checkpoints"
    ckpt.save_train_checkpoint(root, "last", model, {}, {"epoch": 1, "t": torch.ones(2)})
    ckpt.save_train_checkpoint(root, "last", model, {}, {"epoch": 2, "t": torch.ones(2)})
    assert ckpt.load_train_state(root / "last")["epoch"] == 2
    # A kill between the two renames: only the old folder is complete.
    (root / "last").rename(root / ".old-last")
    (root / ".tmp-last-x").mkdir()  # and a half-written new one
    assert ckpt.recover(root, "last") == root / "last"
    assert ckpt.load_train_state(root / "last")["epoch"] == 2
    ckpt.clean_temporaries(root)
    assert not list(root.glob(".tmp-*"))


def test_sam_step_uses_the_gradient_at_the_perturbed_point():
    w = nn.Parameter(torch.tensor([3.0, -4.0]))
    opt = SAM([w], torch.optim.SGD, rho=0.5, lr=0.1)
    loss = lambda: (w**2).sum() / 2  # noqa: E731  gradient = w

    loss().backward()
    opt.first_step()
    torch.testing.assert_close(w.detach(), torch.tensor([3.3, -4.4]))  # w + rho g / |g|
    loss().backward()
    opt.second_step()
    torch.testing.assert_close(w.detach(), torch.tensor([3.0 - 0.33, -4.0 + 0.44]))


@pytest.mark.parametrize("preset", ["flip_crop", "flip_affine"])
def test_transform_presets_keep_uint8_and_size(preset):
    x = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    t = build_transform(preset, 32)
    torch.manual_seed(0)
    a = t(x)
    torch.manual_seed(0)
    assert a.dtype == torch.uint8 and a.shape == (3, 32, 32) and torch.equal(a, t(x))
    assert build_transform("none", 32) is None
    with pytest.raises(ValueError, match="preset"):
        build_transform("jitter", 32)


def test_precision_choice_per_device():
    from fermixnet.config import load_config
    from fermixnet.engine.runtime import _precision

    cpu = torch.device("cpu")
    assert _precision(load_config(None), cpu) == (None, False)  # auto: off on CPU
    assert _precision(load_config(None, ["train.amp=bf16"]), cpu) == (torch.bfloat16, False)
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        _precision(load_config(None, ["train.amp=fp16"]), cpu)


def test_bf16_channels_last_and_sam_steps_on_cpu():
    from fermixnet.engine.loop import optimize_step

    model = TwoHead()
    ctx = _ctx(model, amp_dtype=torch.bfloat16, channels_last=True)
    ctx.optimizer = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1)
    x = torch.rand(4, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    before = model.high.weight.detach().clone()
    res, _ = optimize_step(model, make_step_batch(x, torch.tensor([0, 1, 2, 0]), ctx), ctx)
    assert model.batches == [8, 8]  # SAM: two forwards over the same main + mixed batch
    assert torch.isfinite(res.total) and not torch.equal(before, model.high.weight)


def _lrs(sched_cfg, epochs=4, steps=10, lr=1.0):
    from fermixnet.engine.optim import build_scheduler

    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = build_scheduler(sched_cfg, opt, epochs, steps)
    out = []
    for _ in range(epochs * steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_step_and_exp_schedules_change_only_at_epoch_boundaries():
    from fermixnet.config import SchedConfig

    lrs = _lrs(SchedConfig(name="step", step_size=2, gamma=0.1))
    assert lrs[:20] == [1.0] * 20 and lrs[20:] == pytest.approx([0.1] * 20)
    lrs = _lrs(SchedConfig(name="exp", gamma=0.5))
    assert lrs[9] == 1.0 and lrs[10] == 0.5 and lrs[39] == 0.125


def test_cosine_with_warmup_ramps_up_then_decays_per_step():
    from fermixnet.config import SchedConfig

    lrs = _lrs(SchedConfig(name="cosine", warmup_epochs=0.5))
    assert lrs[:5] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])
    assert lrs[5] == 1.0
    decay = lrs[5:]
    assert all(a > b for a, b in itertools.pairwise(decay)) and decay[-1] < 0.01
    assert _lrs(SchedConfig(name="none")) == [1.0] * 40


def test_scheduler_resumes_mid_run_from_its_state_dict():
    from fermixnet.config import SchedConfig
    from fermixnet.engine.optim import build_scheduler

    cfg = SchedConfig(name="cosine", warmup_epochs=1.0)
    full = _lrs(cfg)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(cfg, opt, 4, 10)
    for _ in range(17):
        opt.step()
        sched.step()
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched2 = build_scheduler(cfg, opt2, 4, 10)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(full[17])


@pytest.mark.parametrize("mode", ["constant", "reflect"])
@pytest.mark.parametrize(("size", "pad"), [(64, 4), (32, 0), (20, 5)])
def test_flip_crop_equals_torchvision_v2_draw_for_draw(mode, size, pad):
    from torchvision.transforms import v2

    from fermixnet.augment.transforms import FlipCrop

    reference = v2.Compose([v2.RandomHorizontalFlip(),
                            v2.RandomCrop(size, padding=pad or None, padding_mode=mode)])
    x = torch.randint(0, 256, (3, size, size), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(size))
    for seed in range(40):
        torch.manual_seed(seed)
        want = reference(x)
        torch.manual_seed(seed)
        assert torch.equal(FlipCrop(size, pad, mode)(x), want), seed
