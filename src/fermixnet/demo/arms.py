"""The arms of `fermixnet compare`: named presets of recipe overrides, or recipe files.

An *arm* is one model trained in the comparison. ``--arms`` names presets (`ARM_PRESETS`), each a
set of `--set` overrides on top of the comparison's recipe (FERMixNet's; the demo's from-scratch
pair when no ``--recipe``); ``--recipes`` gives one YAML file per arm. Every arm gets the same
data, size, epochs, batch, seeds and occluded test copies; the first arm is the reference of the
table's differences. The default, ``resnet18 fermixnet``, is the comparison of Table 1's first
and last rows that `fermixnet compare` and `fermixnet demo` always ran.

Arms that train with the project's occluders (`aug.occluders`, `fermixnet.synth.occluder_aug`)
are tested only on the occluder families that no arm trained with (`held_out`), so that the
occluded accuracies never reward having seen the test occluders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fermixnet.config import Config

RECIPES = Path(__file__).parent / "recipes"
BASELINE_OVERRIDES: tuple[str, ...] = ("model.mid_branch=false", "mix.method=none")
"""The baseline of a recipe: no mid-level branch, no mixing (Table 1, first row)."""
TRAIN_OCCLUDERS: tuple[str, ...] = ("mask", "hand", "hat")
"""Occluder families the `*-occluders` arms train with; the others (sunglasses, scarf, phone,
hair, eyepatch, object) are left for the test."""
OCCLUDER_OVERRIDES: tuple[str, ...] = (
    "aug.occluders.p=0.5", f"aug.occluders.families=[{','.join(TRAIN_OCCLUDERS)}]")
LANDMARK_MIXER = "fermix_landmarks"
"""FERMix with its regions placed by the face's landmarks (issue 20; another branch adds it)."""


@dataclass(frozen=True)
class ArmPreset:
    """A named arm: its table label, whether it is the recipe's baseline, extra overrides."""

    label: str
    baseline: bool
    overrides: tuple[str, ...] = ()


ARM_PRESETS: Mapping[str, ArmPreset] = {
    "resnet18": ArmPreset("ResNet-18", True),
    "fermixnet": ArmPreset("FERMixNet", False),
    "resnet18-occluders": ArmPreset("ResNet-18 + occluders", True, OCCLUDER_OVERRIDES),
    "fermixnet-occluders": ArmPreset("FERMixNet + occluders", False, OCCLUDER_OVERRIDES),
    "fermixnet-landmarks": ArmPreset("FERMixNet (landmark FERMix)", False,
                                     (f"mix.method={LANDMARK_MIXER}",)),
    "fermixnet-landmarks-occluders": ArmPreset(
        "FERMixNet (landmark FERMix) + occluders", False,
        (f"mix.method={LANDMARK_MIXER}", *OCCLUDER_OVERRIDES)),
}
DEFAULT_ARMS: tuple[str, ...] = ("resnet18", "fermixnet")

__all__ = ["ARM_PRESETS", "BASELINE_OVERRIDES", "DEFAULT_ARMS", "OCCLUDER_OVERRIDES", "RECIPES",
           "TRAIN_OCCLUDERS", "Arm", "ArmPreset", "held_out", "resolve_arms"]


@dataclass(frozen=True)
class Arm:
    """One model of a comparison.

    Attributes:
        name: run folder name (`runs/seed<k>/<name>`).
        label: its row in the table.
        recipe: YAML recipe file.
        overrides: `--set` overrides on top of it (before the comparison's own).
    """

    name: str
    label: str
    recipe: Path
    overrides: tuple[str, ...] = ()


def _mixer_exists(name: str) -> bool:
    from fermixnet.augment import MIXERS

    return name in MIXERS


def preset_arm(name: str, recipe: Path | None) -> Arm:
    """The arm of preset `name` on `recipe` (None: the demo's from-scratch recipes).

    Raises:
        ValueError: an unknown preset (naming the choices), or one whose mixer this version
            does not have.
    """
    if name not in ARM_PRESETS:
        raise ValueError(f"--arms: unknown arm {name!r}; expected one of "
                         f"{', '.join(ARM_PRESETS)} (or give recipe files with --recipes)")
    preset = ARM_PRESETS[name]
    if f"mix.method={LANDMARK_MIXER}" in preset.overrides and not _mixer_exists(LANDMARK_MIXER):
        raise ValueError(f"--arms {name}: needs the landmark-placed FERMix mixer "
                         f"(mix.method={LANDMARK_MIXER}), which this version of fermixnet does "
                         "not have yet; choose other arms")
    if recipe is None:
        base = RECIPES / ("resnet18.yaml" if preset.baseline else "fermixnet.yaml")
        named = () if name in DEFAULT_ARMS else (f"name=demo_{name.replace('-', '_')}",)
        return Arm(name, preset.label, base, (*preset.overrides, *named))
    stem = Path(recipe).stem
    suffix = {"resnet18": "_baseline", "fermixnet": ""}.get(name, "_" + name.replace("-", "_"))
    base_overrides = BASELINE_OVERRIDES if preset.baseline else ()
    named = (f"name={stem}{suffix}",) if suffix else ()
    return Arm(name, preset.label, Path(recipe), (*base_overrides, *preset.overrides, *named))


def resolve_arms(arms: Sequence[str] | None = None, recipes: Sequence[Path] | None = None,
                 recipe: Path | None = None) -> list[Arm]:
    """The arms of a comparison, the first one the reference.

    Args:
        arms: preset names (`ARM_PRESETS`); None: `DEFAULT_ARMS` (unless `recipes`).
        recipes: one recipe file per arm, named by its file name (instead of `arms`).
        recipe: the recipe the presets apply to (None: the demo's from-scratch recipes).

    Raises:
        ValueError: both or neither forms in use wrongly, repeated arms, unknown presets.
        FileNotFoundError: a recipe file that does not exist.
    """
    if arms and recipes:
        raise ValueError("give --arms or --recipes, not both")
    if recipes:
        out = []
        for path in recipes:
            if not Path(path).is_file():
                raise FileNotFoundError(f"--recipes {path}: no such file (see configs/)")
            out.append(Arm(Path(path).stem, Path(path).stem, Path(path)))
    else:
        out = [preset_arm(name, recipe) for name in (arms or DEFAULT_ARMS)]
    names = [a.name for a in out]
    if len(set(names)) != len(names):
        raise ValueError(f"each arm must appear once (run folders are named by arm), got "
                         f"{' '.join(names)}")
    if len(out) < 2:
        raise ValueError(f"a comparison needs at least two arms, got {' '.join(names)}")
    return out


def held_out(configs: Sequence[Config]) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """(families any arm trains with, families the test may use: None when no arm trains
    with occluders, i.e. every occluder).

    Raises:
        ValueError: the arms together train with every family, so none is left to test on.
    """
    from fermixnet.synth.occluder_aug import held_out_families, resolve_families

    trained: set[str] = set()
    for cfg in configs:
        if cfg.aug.occluders.p > 0:
            trained.update(resolve_families(cfg.aug.occluders.families))
    if not trained:
        return (), None
    seen = tuple(n for n in resolve_families(["all"]) if n in trained)
    left = held_out_families(seen)
    if not left:
        raise ValueError("the arms train with every occluder family (aug.occluders.families), "
                         "so none is left for an honest test; train with a subset, e.g. --set "
                         "aug.occluders.families=[mask,hand,hat]")
    return seen, left
