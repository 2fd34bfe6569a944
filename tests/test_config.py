"""Typed configs: every recipe and ablation loads, inheritance, overrides, and error messages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from fermixnet.config import Config, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ALL = sorted(CONFIGS.rglob("*.yaml"))


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(CONFIGS)) for p in ALL])
def test_every_config_loads_and_validates(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    assert cfg.data.train and cfg.data.test  # a recipe always says what it trains and tests on
    assert Config.from_dict(cfg.to_dict()) == cfg  # round trip


def test_ablation_files_match_the_generator():
    spec = importlib.util.spec_from_file_location("gen", CONFIGS / "ablations" / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    names = set(gen.configs())
    on_disk = {p.stem for p in (CONFIGS / "ablations").glob("*.yaml")}
    assert names == on_disk
    counts = {t: sum(n.startswith(t) for n in names) for t in
              ("table1_", "table2_", "table3_", "table4_", "fig5_", "fig6_", "fig7_", "fig8_")}
    assert counts == {"table1_": 4, "table2_": 4, "table3_": 12, "table4_": 8, "fig5_": 18,
                      "fig6_": 9, "fig7_": 9, "fig8_": 5}


def test_recipes_follow_section_4_2():
    raf = load_config(CONFIGS / "rafdb_resnet18.yaml")
    assert (raf.model.input_size, raf.train.batch_size, raf.train.epochs) == (224, 64, 50)
    assert (raf.optim.name, raf.optim.lr, raf.optim.momentum, raf.optim.weight_decay) == (
        "sgd", 0.1, 0.9, 1e-4)
    assert (raf.sched.name, raf.sched.step_size, raf.sched.gamma) == ("step", 10, 0.1)
    assert raf.aug.preset == "flip_crop" and raf.mix.p_mix == 0.8
    aff = load_config(CONFIGS / "affectnet8_resnet18.yaml")
    assert (aff.train.batch_size, aff.optim.name, aff.optim.lr, aff.sched.name,
            aff.sched.gamma) == (16, "adam", 1e-4, "exp", 0.8)
    assert aff.aug.preset == "flip_affine" and aff.aug.affine_scale == (0.8, 1.0)
    assert aff.data.balance == "downsample" and aff.model.num_classes == 8
    ir = load_config(CONFIGS / "rafdb_ir50_sam.yaml")
    assert ir.model.name == "ir50" and ir.optim.sam
    joint = load_config(CONFIGS / "fedro_joint.yaml")
    assert len(joint.data.train) == 2 and joint.data.test[0].startswith("fedro:")


def test_ablations_set_what_they_claim():
    corner = load_config(CONFIGS / "ablations" / "table2_corner.yaml")
    assert corner.mix.probs == {"upper_left": 0.5, "upper_right": 0.5}  # replaced, not merged
    assert corner.model.mid_branch is False
    t3 = load_config(CONFIGS / "ablations" / "table3_h60_v20_c20.yaml")
    assert t3.mix.probs["upper"] == pytest.approx(0.3) and t3.mix.probs["upper_left"] == 0.1
    alt = load_config(CONFIGS / "ablations" / "fig5_alternate_pmix0.3.yaml")
    assert (alt.mix.cotrain, alt.mix.p_mix) == (False, 0.3)
    f8 = load_config(CONFIGS / "ablations" / "fig8_mixup.yaml")
    assert (f8.mix.method, f8.aug.preset, f8.model.mid_branch) == ("mixup", "none", False)


def test_overrides_are_yaml_and_nested():
    cfg = load_config(CONFIGS / "rafdb_resnet18.yaml",
                      ["train.epochs=3", "mix.p_mix=0.5", "data.train=manifest:/x",
                       "mix.probs={upper: 0.5, lower: 0.5}", "optim.weight_decay=5e-4"])
    assert cfg.train.epochs == 3 and cfg.mix.p_mix == 0.5 and cfg.data.train == ["manifest:/x"]
    assert cfg.mix.probs == {"upper": 0.5, "lower": 0.5} and cfg.optim.weight_decay == 5e-4


def test_unknown_key_names_close_matches():
    with pytest.raises(ValueError, match=r"unknown config key 'train\.epoch'; did you mean "
                                         r"'train\.epochs'"):
        load_config(None, ["train.epoch=3"])
    with pytest.raises(ValueError, match=r"'optim\.momentum'"):
        load_config(None, ["optim.momentun=0.9"])


@pytest.mark.parametrize("override, flag", [
    ("mix.p_mix=1.5", "--set mix.p_mix="),
    ("loss.alpha=-0.1", "--set loss.alpha="),
    ("mix.probs={upper: 0.7}", "--set mix.probs="),
    ("train.batch_size=0", "--set train.batch_size="),
    ("optim.name=rmsprop", "--set optim.name="),
    ("model.num_classes=6", "--set model.num_classes="),
])
def test_out_of_range_values_name_the_flag(override, flag):
    with pytest.raises(ValueError, match=flag.replace(".", r"\.")):
        load_config(None, [override])


def test_wrong_types_and_bad_yaml_are_reported(tmp_path):
    with pytest.raises(ValueError, match=r"'train\.epochs' must be int"):
        load_config(None, ["train.epochs=many"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ValueError, match="invalid YAML"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_base_chain_and_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("train: {epochs: 7, batch_size: 8}\n")
    (tmp_path / "b.yaml").write_text("_base_: a.yaml\ntrain: {epochs: 9}\n")
    cfg = load_config(tmp_path / "b.yaml")
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.name) == (9, 8, "b")
    (tmp_path / "c.yaml").write_text("_base_: d.yaml\n")
    (tmp_path / "d.yaml").write_text("_base_: c.yaml\n")
    with pytest.raises(ValueError, match="cycle"):
        load_config(tmp_path / "c.yaml")


def test_saved_config_reloads_identically(tmp_path):
    cfg = load_config(CONFIGS / "affectnet7_resnet18.yaml", ["train.amp=off"])
    cfg.save(tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg.__class__(
        **{**cfg.__dict__, "name": cfg.name})


def test_choice_lists_are_the_registries(monkeypatch):
    """`mix.method`, `aug.preset` and `optim.name` accept exactly the names their builders know."""
    import torch

    from fermixnet.augment import MIXERS
    from fermixnet.augment.transforms import PRESETS, build_transform
    from fermixnet.config import OPTIMIZERS, AugConfig, MixConfig, OptimConfig
    from fermixnet.engine.optim import build_optimizer

    monkeypatch.setitem(MIXERS, "toy_mixer", object)
    assert MixConfig(method="toy_mixer").method == "toy_mixer"  # a new mixer needs no config edit
    with pytest.raises(ValueError, match=r"mix\.method"):
        MixConfig(method="not_a_mixer")
    for preset in PRESETS:
        assert AugConfig(preset=preset).preset == preset
        build_transform(preset, 32)  # every accepted preset builds
    with pytest.raises(ValueError, match=r"aug\.preset"):
        AugConfig(preset="not_a_preset")
    layer = torch.nn.Linear(2, 2)
    for name in OPTIMIZERS:
        assert isinstance(build_optimizer(OptimConfig(name=name), layer), torch.optim.Optimizer)
    with pytest.raises(ValueError, match=r"optim\.name"):
        OptimConfig(name="not_an_optimiser")


def test_one_default_input_size():
    from fermixnet.config import ModelConfig
    from fermixnet.inference.backends import predictor_options
    from fermixnet.models.contract import DEFAULT_INPUT_SIZE

    assert ModelConfig().input_size == DEFAULT_INPUT_SIZE
    opts = predictor_options({"num_classes": 7})  # a checkpoint that does not record its size
    assert opts["input_size"] == (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)
