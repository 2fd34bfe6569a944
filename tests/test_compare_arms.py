"""`fermixnet compare --arms/--recipes`: arm presets, held-out occluder families, the table with a
row per arm and its difference to the first, and a quick three-arm then two-arm run end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fermixnet.cli import main
from fermixnet.config import load_config
from fermixnet.demo import arms as arms_module
from fermixnet.demo.arms import ARM_PRESETS, TRAIN_OCCLUDERS, held_out, resolve_arms
from fermixnet.demo.compare import RECIPES, CompareSettings, DataPlan, compare_configs
from fermixnet.demo.summary import DemoRow, format_table
from fermixnet.synth.generate import generate_synthetic

PLAN = DataPlan(train=["folder:/x"], val=["folder:/x"], test=["manifest:/o/x_occluded"],
                counts=(10, 2, 7))


def test_default_arms_are_the_pair_compare_always_ran() -> None:
    base, ours = resolve_arms()
    assert (base.name, base.label, base.recipe, base.overrides) == (
        "resnet18", "ResNet-18", RECIPES / "resnet18.yaml", ())
    assert (ours.name, ours.label, ours.recipe, ours.overrides) == (
        "fermixnet", "FERMixNet", RECIPES / "fermixnet.yaml", ())
    base, ours = resolve_arms(None, None, Path("configs/rafdb_resnet18.yaml"))
    assert base.overrides == ("model.mid_branch=false", "mix.method=none",
                              "name=rafdb_resnet18_baseline") and ours.overrides == ()


def test_arm_errors_name_the_choices(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match=r"unknown arm 'resnet50'.*resnet18, fermixnet, "):
        resolve_arms(["resnet18", "resnet50"])
    with pytest.raises(ValueError, match="each arm must appear once"):
        resolve_arms(["fermixnet", "fermixnet"])
    with pytest.raises(ValueError, match="at least two arms"):
        resolve_arms(["fermixnet"])
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        resolve_arms(None, [tmp_path / "nope.yaml", tmp_path / "b.yaml"])
    with pytest.raises(ValueError, match="not both"):
        CompareSettings(data=["folder:/x"], recipe=Path("configs/rafdb_resnet18.yaml"),
                        recipes=[Path("configs/rafdb_resnet18.yaml")] * 2)
    monkeypatch.setattr(arms_module, "_mixer_exists", lambda name: False)
    with pytest.raises(ValueError, match=r"fermixnet-landmarks.*mix\.method=fermix_landmarks"):
        resolve_arms(["resnet18", "fermixnet-landmarks"])


def test_arm_configs_share_the_budget_and_differ_by_their_overrides(tmp_path: Path) -> None:
    s = CompareSettings(data=["folder:/x"], out=tmp_path, size=48, epochs=3, batch=8,
                        arms=["resnet18", "fermixnet", "fermixnet-occluders",
                              "resnet18-occluders"])
    base, ours, occ, base_occ = compare_configs(s, 4, PLAN)
    for cfg in (base, ours, occ, base_occ):
        assert (cfg.model.input_size, cfg.train.epochs, cfg.train.batch_size) == (48, 3, 8)
        assert cfg.train.seed == 4 and cfg.data.test == PLAN.test
    assert base.aug.occluders.p == ours.aug.occluders.p == 0
    assert occ.aug.occluders.p == 0.5 and occ.aug.occluders.families == list(TRAIN_OCCLUDERS)
    assert occ.mix.method == "fermix" and occ.model.mid_branch
    assert base_occ.mix.method == "none" and not base_occ.model.mid_branch
    assert occ.to_dict() | {"name": "", "aug": None} == ours.to_dict() | {"name": "", "aug": None}
    trained, left = held_out([base, ours, occ])
    assert trained == ("hat", "mask", "hand")
    assert left == ("sunglasses", "scarf", "phone", "hair", "eyepatch", "object")
    assert held_out([base, ours]) == ((), None)  # no arm trains with occluders: test on all
    with pytest.raises(ValueError, match="none is left for an honest test"):
        held_out([base, load_config(None, ["aug.occluders.p=0.5"])])  # families: all
    recipes = [tmp_path / "a.yaml", tmp_path / "b.yaml"]
    recipes[0].write_text("_base_: " + str(RECIPES / "resnet18.yaml") + "\n")
    recipes[1].write_text("_base_: " + str(RECIPES / "fermixnet.yaml") + "\n"
                          "aug: {occluders: {p: 0.3, families: [mask]}}\n")
    a, b = compare_configs(CompareSettings(data=["folder:/x"], out=tmp_path, recipes=recipes),
                           0, PLAN)
    assert (a.mix.method, b.mix.method, b.aug.occluders.p) == ("none", "fermix", 0.3)
    assert [(x.name, x.label) for x in resolve_arms(None, recipes)] == [("a", "a"), ("b", "b")]


def test_table_has_a_row_per_arm_and_differences_to_the_first() -> None:
    rows = [DemoRow("A", 0, 80.0, {"upper": 50.0, "lower": 40.0}),
            DemoRow("B", 0, 82.0, {"upper": 60.0, "lower": 41.0}),
            DemoRow("C", 0, 79.0, {"upper": 55.0, "lower": 50.0})]
    text = format_table(rows)
    assert "| A | 80.0 | 50.0 | 40.0 | 45.0 |" in text
    assert "| B − A | +2.0 | +10.0 | +1.0 | +5.5 |" in text
    assert "| C − A | -1.0 | +5.0 | +10.0 | +7.5 |" in text
    assert "| difference | +2.0 | +10.0 | +1.0 | +5.5 |" in format_table(rows[:2])
    renamed = format_table(rows, {"upper": "upper (sunglasses)"})
    assert renamed.startswith("| model | clean | upper (sunglasses) | lower | occluded mean |")


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    generate_synthetic(root, seed=0, size=32, counts={"train": 28, "val": 14, "test": 14})
    return root


def _occluders_in(manifest: Path) -> set[str]:
    with open(manifest, newline="") as fh:
        return {r["occluder"] for r in csv.DictReader(fh)}


def test_quick_three_then_two_arms_end_to_end(tmp_path: Path, faces: Path, capsys) -> None:
    out = tmp_path / "cmp"
    argv = ["compare", "--data", f"manifest:{faces}", "--out", str(out), "--quick",
            "--arms", "resnet18", "fermixnet", "fermixnet-occluders"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "train: FERMixNet + occluders, seed 0 ->" in printed
    assert (out / "runs" / "seed0" / "fermixnet-occluders" / "metrics.json").is_file()
    seen = _occluders_in(out / "data" / f"{faces.name}_occluded" / "manifest.csv") - {"none"}
    assert seen and not seen & {"mask", "hand", "hat"}  # held out: never a trained family
    summary = (out / "report" / "summary.md").read_text()
    assert "| ResNet-18 |" in summary and "| FERMixNet + occluders |" in summary
    assert "| FERMixNet − ResNet-18 |" in summary
    assert "| FERMixNet + occluders − ResNet-18 |" in summary
    assert "Held-out occluders" in summary and "sunglasses, scarf, phone" in summary
    # Each occlusion type's column names the held-out occluders its test copy shows.
    assert ("| model | clean | upper (sunglasses) | lower (scarf, phone) | left (hair) | "
            "right (hair) | corner (eyepatch) | object | occluded mean |") in summary
    info = json.loads((out / "report" / "summary.json").read_text())
    assert info["occluders"]["trained"] == ["hat", "mask", "hand"]
    name = f"{faces.name}_occluded"
    assert [r["model"] for r in info["rows"][name]] == [
        "ResNet-18", "FERMixNet", "FERMixNet + occluders"]
    assert (out / "report" / "plots" / f"compare_{name}.png").stat().st_size > 0
    # Two arms on the same folder: the finished runs and the held-out copy are reused.
    argv[-3:] = ["fermixnet", "fermixnet-occluders"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("reusing it") == 2 and "data: reusing" in printed
    summary = (out / "report" / "summary.md").read_text()
    assert "| difference |" in summary and "| ResNet-18 |" not in summary
    assert set(ARM_PRESETS) >= {"resnet18", "fermixnet", "fermixnet-occluders"}
