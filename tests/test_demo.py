"""`fermixnet demo`: summary arithmetic by hand, and the quick run end to end through the CLI."""

import json

import numpy as np
import pytest

from fermixnet.cli import main
from fermixnet.demo import DemoSettings
from fermixnet.demo.summary import (
    MEASURED_DRAWS,
    DemoRow,
    Draw,
    draw_checks,
    format_summary,
    format_table,
    spread_rows,
    target_checks,
)


def rows():
    base = [DemoRow("ResNet-18", s, clean=80.0 + s, occluded={"upper": 60.0, "lower": 70.0 + s})
            for s in (0, 2)]
    ours = [DemoRow("FERMixNet", s, clean=79.0, occluded={"upper": 66.0, "lower": 76.0})
            for s in (0, 2)]
    return base + ours


def test_spread_over_seeds_by_hand():
    base, ours = spread_rows(rows())
    assert base.clean == pytest.approx(81.0) and base.spread["clean"] == pytest.approx(2 ** 0.5)
    assert base.occluded_mean == pytest.approx((60 + 71) / 2)
    assert ours.spread["clean"] == 0.0 and ours.occluded_mean == pytest.approx(71.0)


def test_targets_and_difference_row():
    base, ours = spread_rows(rows())
    checks = {c.name: c for c in target_checks([base, ours])}
    drop = checks["ResNet-18 loss under occlusion (points)"]
    assert drop.value == pytest.approx(81 - 65.5) and drop.met
    gain = checks["FERMixNet - ResNet-18, occluded mean (points)"]
    assert gain.value == pytest.approx(71 - 65.5) and gain.met
    clean = checks["FERMixNet - ResNet-18, clean (points)"]
    assert clean.value == pytest.approx(-2.0) and not clean.met
    table = format_table([base, ours])
    assert "| difference | -2.0 | +6.0 | +5.0 | +5.5 |" in table
    assert "81.0 ± 1.4" in table


def test_targets_are_judged_over_the_measured_draws(tmp_path):
    draws = [Draw("cpu A", 0, (84.0, 44.0), (86.0, 54.0)),   # gain +10, clean +2: all met
             Draw("cpu B", 0, (86.0, 46.0), (84.0, 53.0))]   # gain +7, clean -2: clean missed
    over = draw_checks(draws)
    assert over[2] == (2, pytest.approx(7.0), pytest.approx(10.0))  # occluded gain
    assert over[3] == (1, pytest.approx(-2.0), pytest.approx(2.0))  # clean difference
    text = " ".join(format_summary(rows(), {"train": 1.0}, tmp_path, draws=draws).split())
    assert "| FERMixNet - ResNet-18, clean (points) | -2.0 | >= -1 | no | 1 of 2 (-2.0 to +2.0) |" \
        in text
    # this run: gain +5.5 is below every measured draw, clean -2.0 at the edge of the range
    assert "+7.0 to +10.0 points under occlusion (this run: +5.5, outside that range)" in text
    assert "(this run: -2.0, inside)" in text and "2 kinds of 2-core CPU (cpu A, cpu B)" in text


def test_measured_draws_cover_seeds_and_cpu_kinds():
    assert len({d.cpu for d in MEASURED_DRAWS}) >= 2
    assert all({0, 1, 2} <= {d.seed for d in MEASURED_DRAWS if d.cpu == cpu}
               for cpu in {d.cpu for d in MEASURED_DRAWS})


def test_summary_says_the_checkpoint_is_not_for_real_photos(tmp_path):
    text = " ".join(format_summary(rows(), {"train": 1.0}, tmp_path / "best").split())
    assert f"fermixnet predict IMAGE --checkpoint {tmp_path / 'best'}" in text
    assert "trained on synthetic faces" in text and "not for real photos" in text
    assert "near chance" in text and "`fermixnet compare`" in text


def test_settings_errors():
    with pytest.raises(ValueError, match="--train must be at least 7"):
        DemoSettings(train=3)
    with pytest.raises(ValueError, match="--size"):
        DemoSettings(size=16)


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| ResNet-18 |" in printed and "| FERMixNet |" in printed and "occluded mean" in printed
    summary = json.loads((out / "report" / "summary.json").read_text())
    models = [r["model"] for r in summary["rows"]]
    assert models == ["ResNet-18", "FERMixNet"]
    assert set(summary["rows"][0]["occluded"]) == {"upper", "lower", "left", "right", "corner",
                                                   "object"}
    assert (out / "report" / "report.md").stat().st_size > 0
    from PIL import Image

    with Image.open(out / "report" / "plots" / "demo_accuracy.png") as fig:  # the README's plot
        assert fig.width > 400 and fig.height > 200
    assert "plots/demo_accuracy.png" in (out / "report" / "summary.md").read_text()
    from fermixnet.models.weights import load_checkpoint

    model, meta = load_checkpoint(out / "runs" / "seed0" / "fermixnet" / "checkpoints" / "best")
    assert model.mid_branch and meta["input_size"] == 32
    assert meta["framing"]["kind"] == "box"  # the generator's framing (upright), for predict
    template = np.array(meta["framing"]["template"])
    assert template.shape == (5, 2) and template[0, 0] < template[1, 0]  # eyes: image-left first
    assert template[0, 1] < template[3, 1]  # eyes above the mouth corners
    baseline, _ = load_checkpoint(out / "runs" / "seed0" / "resnet18" / "checkpoints" / "best")
    assert not baseline.mid_branch
    # A rerun reuses the data and the finished runs.
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    assert "data: reusing" in capsys.readouterr().out


def test_demo_set_overrides_accumulate():
    import argparse

    from fermixnet.cli import demo

    parser = argparse.ArgumentParser()
    demo.register(parser.add_subparsers())
    args = parser.parse_args(["demo", "--set", "train.cpu_threads=1", "--set", "data.workers=0"])
    assert args.overrides == ["train.cpu_threads=1", "data.workers=0"]
