"""Face parameters of the synthetic data set: FACS action units, expressions, identity, pose.

An expression is a set of action-unit (AU) intensities in [0, 1] (Ekman & Friesen's FACS, with the
EMFACS prototypes of the basic emotions). Every class has cues in the upper face (brows, lids,
cheeks) and in the lower face (nose, lips, jaw), so that an occluded half leaves partial evidence,
as in real faces. Difficulty comes from what real data has too: weak intensities (close to
neutral), blends of two expressions, resting faces that look expressive (identity), pose,
lighting, clutter, blur and noise.

AUs are stored per face side, (2, N_AU), because contempt is unilateral (R12/R14). Index 0 is the
face on the image-left side, index 1 the image-right side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from fermixnet.labels import CANONICAL

# FACS action units used by the renderer (number -> name).
AU_NAMES: Mapping[int, str] = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    12: "lip corner puller",
    14: "dimpler",
    15: "lip corner depressor",
    17: "chin raiser",
    20: "lip stretcher",
    23: "lip tightener",
    24: "lip pressor",
    25: "lips part",
    26: "jaw drop",
}
AUS: tuple[int, ...] = tuple(AU_NAMES)
AU_INDEX: Mapping[int, int] = {au: i for i, au in enumerate(AUS)}

# EMFACS-style prototypes: AU -> relative weight. Weights < 1 mark AUs that are often absent or
# weaker; they are dropped at random (see `sample_expression`).
PROTOTYPES: Mapping[str, Mapping[int, float]] = {
    "neutral": {},
    "happy": {6: 0.9, 12: 1.0, 25: 0.5},
    "sad": {1: 1.0, 4: 0.6, 15: 1.0, 17: 0.5},
    "surprise": {1: 1.0, 2: 1.0, 5: 0.9, 25: 0.8, 26: 1.0},
    "fear": {1: 1.0, 2: 0.6, 4: 0.8, 5: 1.0, 7: 0.3, 20: 1.0, 25: 0.8, 26: 0.4},
    "disgust": {4: 0.5, 7: 0.5, 9: 1.0, 10: 0.9, 15: 0.5, 17: 0.4},
    "anger": {4: 1.0, 5: 0.6, 7: 0.8, 17: 0.4, 23: 1.0, 24: 0.6},
    "contempt": {12: 0.7, 14: 1.0},
}
# AUs of a prototype that act on one side of the face only.
UNILATERAL: Mapping[str, tuple[int, ...]] = {"contempt": (12, 14)}
# Prototype AUs with weight >= this value are always present; the others are dropped with p=0.3.
_CORE = 0.8

SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (255, 224, 196),
    (241, 194, 167),
    (224, 172, 138),
    (198, 144, 108),
    (170, 116, 80),
    (141, 90, 62),
    (110, 68, 44),
    (82, 52, 36),
)
HAIR_COLOURS: tuple[tuple[int, int, int], ...] = (
    (20, 16, 14),
    (60, 40, 28),
    (110, 72, 40),
    (170, 120, 70),
    (220, 190, 130),
    (140, 50, 30),
    (150, 150, 150),
    (235, 235, 230),
)
EYE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (60, 40, 25),
    (100, 70, 40),
    (60, 100, 140),
    (80, 120, 80),
    (110, 110, 120),
)
HAIR_STYLES: tuple[str, ...] = ("bald", "short", "fringe", "long", "side")


@dataclass(frozen=True)
class SynthConfig:
    """Difficulty knobs of the generator (defaults: the calibrated demo settings).

    Attributes:
        num_classes: 7 (neutral..anger) or 8 (with contempt).
        intensity: range of an expression's overall intensity; low values approach neutral.
        blend_prob: probability that a second expression is blended in (mixed/ambiguous faces).
        blend_weight: range of the blended expression's weight relative to the labelled one.
        rest_au: maximum of the random resting AU activity every face has (idiosyncrasy).
        rest_face: scale of identity offsets of brow tilt and mouth curvature at rest.
        rotation: maximum in-plane rotation in degrees.
        scale: range of the face scale.
        shift: maximum shift of the face centre, as a fraction of the image size.
        light: maximum strength of the directional lighting gradient.
        clutter: range of the number of background shapes.
        blur: maximum Gaussian blur radius, in output pixels.
        noise: maximum standard deviation of the pixel noise, in 0-255 units.
    """

    num_classes: int = 7
    intensity: tuple[float, float] = (0.5, 1.0)
    blend_prob: float = 0.2
    blend_weight: tuple[float, float] = (0.1, 0.5)
    rest_au: float = 0.15
    rest_face: float = 1.0
    rotation: float = 10.0
    scale: tuple[float, float] = (0.88, 1.08)
    shift: float = 0.05
    light: float = 0.35
    clutter: tuple[int, int] = (1, 6)
    blur: float = 0.9
    noise: float = 5.0
    classes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.num_classes not in (7, 8):
            raise ValueError(f"num_classes must be 7 or 8, got {self.num_classes}")
        lo, hi = self.intensity
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"intensity must satisfy 0 <= lo <= hi <= 1, got {self.intensity}")
        if not 0.0 <= self.blend_prob <= 1.0:
            raise ValueError(f"blend_prob must be in [0, 1], got {self.blend_prob}")
        object.__setattr__(self, "classes", CANONICAL[: self.num_classes])


@dataclass
class Face:
    """Everything the renderer needs to draw one face (all sampled, none drawn yet).

    Attributes:
        label: canonical class index.
        aus: (2, len(AUS)) AU intensities in [0, 1] per face side (image-left, image-right).
        blend: name of the blended second expression, or "".
        blend_weight: its weight (0 without blend).
        intensity: overall intensity of the labelled expression.
        ident: identity parameters (shape, colours, hair, resting face).
        pose: rotation (deg), scale, shift x/y (fractions of the image).
        scene: background, lighting, blur and noise parameters.
    """

    label: int
    aus: np.ndarray
    blend: str
    blend_weight: float
    intensity: float
    ident: dict[str, float | int | tuple[int, int, int]]
    pose: dict[str, float]
    scene: dict[str, float | int | tuple[int, int, int]]

    def au(self, number: int, side: int | None = None) -> float:
        """Intensity of an AU on one side (0 image-left, 1 image-right) or the maximum of both."""
        column = self.aus[:, AU_INDEX[number]]
        return float(column.max() if side is None else column[side])


def _prototype_aus(name: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    """(2, N_AU) AU intensities of one expression at an overall strength."""
    aus = np.zeros((2, len(AUS)))
    unilateral = UNILATERAL.get(name, ())
    side = int(rng.integers(2))
    for au, weight in PROTOTYPES[name].items():
        if weight < _CORE and rng.random() < 0.3:
            continue  # optional AU absent in this face
        value = min(1.0, strength * weight * rng.uniform(0.75, 1.15))
        if au in unilateral:
            aus[side, AU_INDEX[au]] = value
        else:
            # Slight natural asymmetry of bilateral AUs.
            aus[:, AU_INDEX[au]] = value * rng.uniform(0.9, 1.0, size=2)
    return aus


def sample_expression(
    label: int, cfg: SynthConfig, rng: np.random.Generator
) -> tuple[np.ndarray, str, float, float]:
    """AUs of a face of class `label`: prototype x intensity, optional blend, resting activity.

    Returns:
        (aus, blend name or "", blend weight, intensity).
    """
    name = cfg.classes[label]
    intensity = float(rng.uniform(*cfg.intensity))
    aus = _prototype_aus(name, intensity, rng)
    blend, weight = "", 0.0
    if rng.random() < cfg.blend_prob:
        others = [c for c in cfg.classes if c not in (name, "neutral")]
        blend = str(others[int(rng.integers(len(others)))])
        weight = float(rng.uniform(*cfg.blend_weight))
        # The labelled expression stays dominant: the blend's strength is relative to it, and
        # neutral faces get at most a weak trace.
        strength = weight * (intensity if name != "neutral" else 0.35)
        aus = np.maximum(aus, _prototype_aus(blend, strength, rng))
    rest = rng.uniform(0.0, cfg.rest_au, size=(1, len(AUS))) * (rng.random((1, len(AUS))) < 0.3)
    aus = np.clip(np.maximum(aus, rest), 0.0, 1.0)
    return aus, blend, weight, intensity


def _pick(options: tuple, rng: np.random.Generator) -> object:
    return options[int(rng.integers(len(options)))]


def _jitter_colour(rgb: tuple[int, int, int], rng: np.random.Generator, amount: int = 14) -> tuple:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def sample_identity(cfg: SynthConfig, rng: np.random.Generator) -> dict:
    """Identity: face shape, skin, eyes, brows, hair, lips, resting face."""
    skin_index = int(rng.integers(len(SKIN_TONES)))
    skin = _jitter_colour(SKIN_TONES[skin_index], rng)
    return {
        "skin_tone": skin_index,
        "skin": skin,
        "face_w": rng.uniform(0.86, 1.08),
        "face_h": rng.uniform(1.18, 1.42),
        "jaw": rng.uniform(0.55, 0.9),
        "eye_size": rng.uniform(0.85, 1.2),
        "eye_sep": rng.uniform(0.34, 0.42),
        "eye_colour": _pick(EYE_COLOURS, rng),
        "brow_thick": rng.uniform(0.05, 0.1),
        "brow_arch": rng.uniform(0.0, 0.08),
        "hair_style": int(rng.integers(len(HAIR_STYLES))),
        "hair": _jitter_colour(_pick(HAIR_COLOURS, rng), rng),
        "lip": _jitter_colour(
            (int(skin[0] * 0.8 + 40), int(skin[1] * 0.55), int(skin[2] * 0.6)), rng
        ),
        "mouth_w": rng.uniform(0.26, 0.36),
        "nose_len": rng.uniform(0.27, 0.36),
        "shirt": tuple(int(c) for c in rng.integers(0, 256, size=3)),
        # Resting-face offsets: some people look a bit sad or stern at rest (ambiguity).
        "rest_brow": rng.normal(0.0, 0.03) * cfg.rest_face,
        "rest_mouth": rng.normal(0.0, 0.025) * cfg.rest_face,
    }


def sample_face(label: int, cfg: SynthConfig, rng: np.random.Generator) -> Face:
    """All random parameters of one synthetic face of class `label`."""
    aus, blend, weight, intensity = sample_expression(label, cfg, rng)
    ident = sample_identity(cfg, rng)
    pose = {
        "roll": float(rng.uniform(-cfg.rotation, cfg.rotation)),
        "scale": float(rng.uniform(*cfg.scale)),
        "dx": float(rng.uniform(-cfg.shift, cfg.shift)),
        "dy": float(rng.uniform(-cfg.shift, cfg.shift)),
    }
    scene = {
        "bg": tuple(int(c) for c in rng.integers(0, 256, size=3)),
        "clutter": int(rng.integers(cfg.clutter[0], cfg.clutter[1] + 1)),
        "light_dir": float(rng.uniform(0, 2 * np.pi)),
        "light": float(rng.uniform(0, cfg.light)),
        "brightness": float(rng.uniform(0.75, 1.15)),
        "cast_r": float(rng.uniform(0.92, 1.08)),
        "cast_b": float(rng.uniform(0.92, 1.08)),
        "blur": float(rng.uniform(0, cfg.blur)) if rng.random() < 0.6 else 0.0,
        "noise": float(rng.uniform(0, cfg.noise)),
    }
    return Face(label, aus, blend, weight, intensity, ident, pose, scene)


PRESETS: Mapping[str, Mapping[str, object]] = {
    "aligned": {},
    "unaligned": {"rotation": 30.0, "scale": (0.75, 1.15), "shift": 0.15},
}
"""Named `SynthConfig` settings. ``aligned``: the calibrated defaults (faces nearly upright and
centred, as in aligned crops: the demo's). ``unaligned``: faces framed like face-detector boxes,
not aligned: roll up to ±30°, centre shifted up to 15 % of the side, scale 0.75-1.15, so that
fixed image halves miss the face's halves (the generator draws no yaw). The landmark columns
(``lm_*``) follow each face's pose."""


def synth_preset(name: str = "aligned", **overrides: object) -> SynthConfig:
    """The `SynthConfig` of preset `name` (`PRESETS`) with `overrides` on top.

    Raises:
        ValueError: an unknown preset, naming the choices.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown synthetic preset {name!r}; expected one of {', '.join(PRESETS)}")
    return SynthConfig(**{**PRESETS[name], **overrides})  # type: ignore[arg-type]
