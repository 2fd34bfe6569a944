"""`fermixnet compare`: the baseline and validation rules, the estimate's arithmetic by hand, and
a quick run end to end through the CLI on a generated `fer2013.csv` (files, estimate before
training, reuse of finished runs, resume of a half-done one)."""

from __future__ import annotations

import json

import pytest

from fermixnet.cli import main
from fermixnet.config import load_config
from fermixnet.demo.compare import (
    BASELINE_OVERRIDES,
    DEFAULT_VAL_FRACTION,
    RECIPES,
    CompareSettings,
    DataPlan,
    compare_configs,
)
from fermixnet.demo.estimate import RunCost, Speed, format_seconds, run_cost
from fermixnet.synth.occlude import OCCLUSION_TYPES


def test_demo_baseline_recipe_is_fermixnet_minus_mid_branch_and_fermix():
    ours = load_config(RECIPES / "fermixnet.yaml", BASELINE_OVERRIDES).to_dict()
    base = load_config(RECIPES / "resnet18.yaml").to_dict()
    assert {**ours, "name": ""} == {**base, "name": ""}


def plan(val: bool) -> DataPlan:
    return DataPlan(train=["folder:/x,name=a"], val=["folder:/x,name=a"] if val else [],
                    test=["manifest:/out/data/x_occluded"], counts=(10, 2, 7))


def test_recipe_pair_from_a_config_and_validation_without_a_val_split(tmp_path):
    s = CompareSettings(data=["folder:/x"], out=tmp_path, recipe="configs/rafdb_resnet18.yaml",
                        size=48, epochs=3, batch=8)
    base, ours = compare_configs(s, 5, plan(val=False))
    assert not base.model.mid_branch and base.mix.method == "none"
    assert ours.model.mid_branch and ours.mix.method == "fermix"
    for cfg in (base, ours):  # same budget; validation carved from train, never the test set
        assert (cfg.model.input_size, cfg.train.epochs, cfg.train.batch_size) == (48, 3, 8)
        assert (cfg.train.seed, cfg.optim.name, cfg.optim.lr) == (5, "sgd", 0.1)
        assert cfg.data.train == ["folder:/x,name=a"] and cfg.data.val == []
        assert cfg.data.val_fraction == 0.1 and cfg.data.test == ["manifest:/out/data/x_occluded"]


def test_demo_recipes_use_a_val_split_or_carve_one(tmp_path):
    s = CompareSettings(data=["folder:/x"], out=tmp_path)
    with_val = compare_configs(s, 0, plan(val=True))
    assert all(c.data.val == ["folder:/x,name=a"] and c.data.val_fraction == 0
               for c in with_val)
    without = compare_configs(s, 0, plan(val=False))  # the demo recipe carves none by itself
    assert all(c.data.val == [] and c.data.val_fraction == DEFAULT_VAL_FRACTION for c in without)


def test_run_cost_and_estimate_by_hand():
    cfg = load_config(RECIPES / "fermixnet.yaml", ["train.epochs=3", "train.batch_size=10"])
    cost = run_cost("FERMixNet", cfg, (1000, 100, 700), epochs_done=1, speed=Speed(100, 400))
    assert (cost.train_images, cost.eval_images) == (2000, 100 * 2 + 2 * 700)
    assert cost.seconds == pytest.approx(2000 / 100 + 1600 / 400)
    capped = load_config(RECIPES / "fermixnet.yaml",
                         ["train.epochs=3", "train.batch_size=10", "train.max_steps_per_epoch=4"])
    assert run_cost("x", capped, (1000, 0, 0), 0, Speed(1, 1)).train_images == 3 * 40
    assert RunCost("x", 0, 0, Speed(1, 1)).seconds == 0
    assert [format_seconds(t) for t in (42, 420, 11100)] == ["42 s", "7 min", "3 h 05 min"]


def test_missing_data_root_fails_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compare", "--data", f"fer2013:{tmp_path / 'nope'}", "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_quick_compare_on_fer2013_end_to_end(tmp_path, capsys, make_fer2013_csv):
    root = tmp_path / "fer2013"
    make_fer2013_csv(root, {"Training": 21, "PublicTest": 7, "PrivateTest": 7})
    out = tmp_path / "cmp"
    argv = ["compare", "--data", f"fer2013:{root}", "--quick", "--out", str(out),
            "--set", "train.cpu_threads=1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "estimate: about" in printed
    assert printed.index("estimate: about") < printed.index("train: ResNet-18, seed 0 ->")
    report = out / "report"
    summary = json.loads((report / "summary.json").read_text())
    rows = summary["rows"]["fer2013_occluded"]
    assert [r["model"] for r in rows] == ["ResNet-18", "FERMixNet"]
    assert all(set(r["occluded"]) == set(OCCLUSION_TYPES) for r in rows)
    text = (report / "summary.md").read_text()
    assert "| ResNet-18 |" in text and "| FERMixNet |" in text and "| difference |" in text
    assert "| model | clean | upper | lower | left | right | corner | object |" in text
    assert "plots/compare_fer2013_occluded.png" in text
    from PIL import Image

    with Image.open(report / "plots" / "compare_fer2013_occluded.png") as fig:
        assert fig.width > 400 and fig.height > 200
    assert (report / "report.md").stat().st_size > 0
    cfg = load_config(out / "runs" / "seed0" / "fermixnet" / "config.yaml")
    assert cfg.data.val == [f"fer2013:{root}"] and cfg.data.val_fraction == 0  # PublicTest
    base = load_config(out / "runs" / "seed0" / "resnet18" / "config.yaml")
    assert not base.model.mid_branch and base.mix.method == "none"

    # A rerun reuses both finished runs: nothing is trained again.
    weights = out / "runs" / "seed0" / "fermixnet" / "checkpoints" / "best" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("reusing it") == 2 and "estimate: nothing to train" in printed
    assert "data: reusing" in printed and weights.stat().st_mtime_ns == stamp
    assert json.loads((report / "summary.json").read_text())["rows"] == summary["rows"]

    # Killed after its last checkpoint, before the test sets: the rerun resumes, same numbers.
    metrics = out / "runs" / "seed0" / "fermixnet" / "metrics.json"
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "status": "running"}))
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "train: FERMixNet, seed 0 -> " in printed and "resuming" in printed
    assert "estimate: 1 run(s) to train (1 finished run(s) reused)" in printed
    assert json.loads((report / "summary.json").read_text())["rows"] == summary["rows"]


def test_a_folder_without_val_split_selects_on_a_share_of_train(tmp_path):
    from PIL import Image

    from fermixnet.demo.compare import plan_data

    for split, n in (("train", 2), ("test", 1)):
        for cls in ("happy", "sad"):
            (tmp_path / "faces" / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (8, 8)).save(tmp_path / "faces" / split / cls / f"{i}.png")
    lines: list[str] = []
    s = CompareSettings(data=[f"folder:{tmp_path / 'faces'}"], out=tmp_path / "out")
    plan = plan_data(s, lines.append)
    assert plan.val == [] and plan.counts == (4, 0, 2 * (1 + len(OCCLUSION_TYPES)))
    assert plan.test == [f"manifest:{tmp_path / 'out' / 'data' / 'faces_occluded'}"]
    assert any("has no val split" in line for line in lines)
