"""Typed training configuration: dataclasses, YAML recipes with `_base_` inheritance, CLI overrides.

A recipe is a YAML file whose top-level keys are the sections below (`model`, `data`, `aug`, `mix`,
`loss`, `optim`, `sched`, `train`, `eval`). `_base_: other.yaml` merges this file over another one,
so each ablation in `configs/ablations/` states only what differs from its recipe. Overrides from
the command line (`--set train.epochs=10`) are parsed as YAML values and applied last. Unknown keys
and out-of-range values raise `ValueError` naming the key and the `--set` flag that fixes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fermixnet.augment import MIXERS
from fermixnet.augment.fermix import DEFAULT_PROBS, check_probs
from fermixnet.augment.transforms import PRESETS
from fermixnet.config_types import build_dataclass, plain_tree
from fermixnet.config_yaml import apply_overrides, read_yaml_tree
from fermixnet.labels import CANONICAL
from fermixnet.models.contract import DEFAULT_INPUT_SIZE, IMAGENET_MEAN, IMAGENET_STD

# Optimisers of the recipes by name: the class of `torch.optim` each builds
# (`fermixnet.engine.optim.build_optimizer`).
OPTIMIZERS: dict[str, str] = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}


def _check(ok: bool, key: str, expected: str, got: Any, example: str) -> None:
    """Raise a `ValueError` naming the key, the expectation and the `--set` flag that fixes it."""
    if not ok:
        raise ValueError(
            f"config key '{key}' must be {expected}, got {got!r} "
            f"(set it with --set {key}={example})"
        )


def _check_choice(value: str, key: str, choices: Sequence[str]) -> None:
    _check(value in choices, key, f"one of {', '.join(choices)}", value, choices[0])


@dataclass
class ModelConfig:
    """Network to train (Sec. 3.3)."""

    name: str = "resnet18"
    """Backbone registered in `fermixnet.models` (resnet18, resnet50, ir50)."""
    num_classes: int = 7
    """7 (RAF-DB, AffectNet-7, FED-RO) or 8 (FERPlus, AffectNet-8), canonical order."""
    mid_branch: bool = True
    """Mid-level representation branch after conv4_x (Eq. 6); off gives the vanilla ResNet."""
    pretrained: str | None = None
    """Path of backbone weights (e.g. MS-Celeb-1M ResNet-18 .pth); nothing is downloaded."""
    input_size: int = DEFAULT_INPUT_SIZE
    """Side of the square input images in pixels (the cache stores images at this size)."""

    def __post_init__(self) -> None:
        _check(self.num_classes in (7, 8), "model.num_classes", "7 or 8", self.num_classes, "7")
        _check(self.input_size >= 16, "model.input_size", ">= 16", self.input_size, "224")


@dataclass
class DataConfig:
    """Where the images come from; specs are `name:root[,key=value]` as in `fermixnet data`."""

    train: list[str] = field(default_factory=list)
    """Training sets; several are concatenated (FED-RO protocol: RAF-DB + AffectNet)."""
    val: list[str] = field(default_factory=list)
    """Validation sets (their `val` split); empty: carve `val_fraction` from the training data."""
    test: list[str] = field(default_factory=list)
    """Test sets, only evaluated (with the last and the best-by-validation weights)."""
    val_fraction: float = 0.1
    """Share of each class held out for validation when `val` is empty (0 disables validation)."""
    cache_dir: str | None = None
    """Folder of the uint8 image caches; default `$FERMIXNET_CACHE` or `~/.cache/fermixnet`."""
    workers: int = 2
    """DataLoader worker processes per training process."""
    on_device: bool = False
    """Keep the training images as one uint8 tensor on the training device and flip/crop whole
    batches there instead of DataLoader workers (for GPUs; aug.preset flip_crop or none)."""
    balance: str = "none"
    """Class imbalance (AffectNet, Sec. 4.2): none, downsample (the paper's), or sampler
    (class-balanced draws with replacement; one process only)."""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    """Normalisation mean (applied on the device)."""
    std: tuple[float, float, float] = IMAGENET_STD
    """Normalisation standard deviation."""

    def __post_init__(self) -> None:
        for key in ("train", "val", "test"):
            for spec in getattr(self, key):
                if ":" not in spec:
                    raise ValueError(
                        f"config key 'data.{key}' entry {spec!r} must look like "
                        "name:root[,key=value] (in a YAML flow list [a, b] a comma starts a new "
                        f"item: quote specs with options); e.g. --set data.{key}=rafdb:/data/RAF-DB"
                    )
        _check(0.0 <= self.val_fraction < 1.0, "data.val_fraction", "in [0, 1)", self.val_fraction,
               "0.1")
        _check(self.workers >= 0, "data.workers", ">= 0", self.workers, "2")
        _check_choice(self.balance, "data.balance", ("none", "downsample", "sampler"))
        _check(all(s > 0 for s in self.std), "data.std", "three positive numbers", self.std,
               "[0.229,0.224,0.225]")


@dataclass
class OccluderAugConfig:
    """Realistic occluders drawn on training faces by their landmarks (`fermixnet.synth.
    occluder_aug`): masks, sunglasses, hands, phones, scarves, hair, ..."""

    p: float = 0.0
    """Probability that a training face gets one occluder (0: off, the paper's recipes)."""
    families: list[str] = field(default_factory=lambda: ["all"])
    """Occluder families to draw: `all` or a list of sunglasses, hat, mask, scarf, hand, phone,
    hair, eyepatch, object (`fermixnet compare` tests on the others)."""

    def __post_init__(self) -> None:
        from fermixnet.synth.occluder_aug import resolve_families

        _check(0.0 <= self.p <= 1.0, "aug.occluders.p", "in [0, 1]", self.p, "0.5")
        resolve_families(self.families)


@dataclass
class AugConfig:
    """Per-sample augmentation presets of Sec. 4.2, applied to uint8 tensors in the workers."""

    preset: str = "flip_crop"
    """flip_crop (RAF-DB, FERPlus), flip_affine (AffectNet), none (Fig. 8)."""
    crop_padding: float = 0.125
    """flip_crop: padding before the random crop, as a share of the image side."""
    crop_padding_mode: str = "constant"
    """flip_crop: fill of the padding, constant (black) or reflect."""
    affine_translate: float = 0.2
    """flip_affine: maximal translation as a share of the image side."""
    affine_scale: tuple[float, float] = (0.8, 1.0)
    """flip_affine: range of the random scale."""
    occluders: OccluderAugConfig = field(default_factory=OccluderAugConfig)
    """Realistic occluders on training faces (off by default)."""

    def __post_init__(self) -> None:
        _check_choice(self.preset, "aug.preset", PRESETS)
        _check(0.0 <= self.crop_padding <= 0.5, "aug.crop_padding", "in [0, 0.5]",
               self.crop_padding, "0.125")
        _check_choice(self.crop_padding_mode, "aug.crop_padding_mode", ("constant", "reflect"))
        _check(0.0 <= self.affine_translate <= 1.0, "aug.affine_translate", "in [0, 1]",
               self.affine_translate, "0.2")
        lo, hi = self.affine_scale
        _check(0 < lo <= hi, "aug.affine_scale", "[low, high] with 0 < low <= high",
               self.affine_scale, "[0.8,1.0]")


@dataclass
class MixConfig:
    """Batch mixing in the training step (Sec. 3.2) and its baselines (Fig. 8)."""

    method: str = "fermix"
    """fermix, fermix_landmarks (regions placed by each face's landmarks), cutout, cutmix, mixup
    or none."""
    probs: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PROBS))
    """FERMix region probabilities (Table 3); regions left out have probability 0."""
    p_mix: float = 0.8
    """Probability that an iteration also trains on the mixed batch (Sec. 3.2.2, Fig. 5)."""
    cotrain: bool = True
    """Co-training: main + mixed batch in one forward (Eq. 9); off: mixed batch alone (Fig. 5)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of the mixer (e.g. cutmix/mixup `alpha`, cutout `size`)."""

    def __post_init__(self) -> None:
        _check_choice(self.method, "mix.method", (*MIXERS, "none"))
        _check(0.0 <= self.p_mix <= 1.0, "mix.p_mix", "in [0, 1]", self.p_mix, "0.8")
        if self.method in ("fermix", "fermix_landmarks"):
            try:
                check_probs(self.probs)
            except ValueError as err:
                raise ValueError(f"config key 'mix.probs': {err} (set it with --set "
                                 "mix.probs={upper:0.5,lower:0.5})") from None


@dataclass
class LossConfig:
    """Weights of Eq. 9."""

    alpha: float = 0.5
    """Weight of the mixed image's loss against the main image's (Fig. 7)."""
    beta: float = 0.5
    """Weight of the high-level head against the mid-level head (Fig. 6)."""

    def __post_init__(self) -> None:
        _check(0.0 <= self.alpha <= 1.0, "loss.alpha", "in [0, 1]", self.alpha, "0.5")
        _check(0.0 <= self.beta <= 1.0, "loss.beta", "in [0, 1]", self.beta, "0.5")


@dataclass
class OptimConfig:
    """Optimiser (Sec. 4.2); `sam` wraps it in sharpness-aware minimisation (Sec. 4.7, IR-50)."""

    name: str = "sgd"
    """sgd, adam or adamw."""
    lr: float = 0.1
    """Initial learning rate for the global batch."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 1e-4
    """L2 weight decay."""
    sam: bool = False
    """Wrap the optimiser in SAM (two forward/backward passes per step)."""
    sam_rho: float = 0.05
    """SAM neighbourhood radius."""
    grad_clip: float | None = None
    """Clip the gradient norm to this value (off when null)."""

    def __post_init__(self) -> None:
        _check_choice(self.name, "optim.name", tuple(OPTIMIZERS))
        _check(self.lr > 0, "optim.lr", "> 0", self.lr, "0.1")
        _check(0.0 <= self.momentum < 1.0, "optim.momentum", "in [0, 1)", self.momentum, "0.9")
        _check(self.weight_decay >= 0, "optim.weight_decay", ">= 0", self.weight_decay, "1e-4")
        _check(self.sam_rho > 0, "optim.sam_rho", "> 0", self.sam_rho, "0.05")
        _check(self.grad_clip is None or self.grad_clip > 0, "optim.grad_clip", "> 0 or null",
               self.grad_clip, "5.0")


@dataclass
class SchedConfig:
    """Learning-rate schedule, updated after every optimiser step."""

    name: str = "step"
    """step (lr x gamma every step_size epochs), exp (lr x gamma each epoch), cosine, none."""
    step_size: int = 10
    """step: epochs between decays."""
    gamma: float = 0.1
    """step/exp: decay factor."""
    warmup_epochs: float = 0.0
    """Linear warm-up from ~0 to optim.lr over this many epochs (may be fractional); 0 = none."""

    def __post_init__(self) -> None:
        _check_choice(self.name, "sched.name", ("step", "exp", "cosine", "none"))
        _check(self.step_size >= 1, "sched.step_size", ">= 1", self.step_size, "10")
        _check(0.0 < self.gamma <= 1.0, "sched.gamma", "in (0, 1]", self.gamma, "0.1")
        _check(self.warmup_epochs >= 0, "sched.warmup_epochs", ">= 0", self.warmup_epochs, "0.6")


@dataclass
class TrainConfig:
    """Loop settings."""

    epochs: int = 50
    """Number of epochs."""
    batch_size: int = 64
    """Global batch size (split evenly over the processes under torchrun)."""
    seed: int = 0
    """Seed of weights init, data order, augmentation, p_mix draws and the validation split."""
    device: str = "auto"
    """auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."""
    amp: str = "auto"
    """Mixed precision: auto (bf16 on CUDA, off elsewhere), bf16, fp16 (CUDA, GradScaler), off."""
    channels_last: str = "auto"
    """Memory format: auto (on for CUDA), on, off."""
    log_every: int = 20
    """Steps between log records (TensorBoard, NaN checks)."""
    max_steps_per_epoch: int | None = None
    """Cut each epoch after this many steps (smoke runs)."""
    cpu_threads: int | None = None
    """torch intra-op threads (null: torch's default); 1 is fastest on a busy shared CPU."""

    def __post_init__(self) -> None:
        # YAML 1.1 reads `on`/`off` as booleans.
        if isinstance(self.channels_last, bool):
            self.channels_last = "on" if self.channels_last else "off"
        if isinstance(self.amp, bool):
            self.amp = "auto" if self.amp else "off"
        _check(self.epochs >= 1, "train.epochs", ">= 1", self.epochs, "50")
        _check(self.batch_size >= 1, "train.batch_size", ">= 1", self.batch_size, "64")
        _check_choice(self.amp, "train.amp", ("auto", "bf16", "fp16", "off"))
        _check_choice(self.channels_last, "train.channels_last", ("auto", "on", "off"))
        _check(self.log_every >= 1, "train.log_every", ">= 1", self.log_every, "20")
        _check(self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1,
               "train.max_steps_per_epoch", ">= 1 or null", self.max_steps_per_epoch, "10")
        _check(self.cpu_threads is None or self.cpu_threads >= 1, "train.cpu_threads",
               ">= 1 or null", self.cpu_threads, "1")


@dataclass
class EvalConfig:
    """Validation and test evaluation."""

    batch_size: int = 128
    """Evaluation batch size per process."""
    select: str = "accuracy"
    """Validation metric that picks the best checkpoint: accuracy or balanced_accuracy."""

    def __post_init__(self) -> None:
        _check(self.batch_size >= 1, "eval.batch_size", ">= 1", self.batch_size, "128")
        _check_choice(self.select, "eval.select", ("accuracy", "balanced_accuracy"))


@dataclass
class Config:
    """A whole training recipe (one YAML file under `configs/`)."""

    name: str = ""
    """Short label used in reports and sweep tables (default: the file name)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        """Rules that span sections (each section checks its own fields)."""
        if self.optim.sam and self.train.amp == "fp16":
            raise ValueError("optim.sam does not support train.amp=fp16 (use --set train.amp=bf16)")
        if self.data.on_device and (self.aug.preset not in ("flip_crop", "none")
                                    or self.data.balance == "sampler"):
            raise ValueError(f"data.on_device=true supports aug.preset flip_crop or none (got "
                             f"{self.aug.preset}) and data.balance none or downsample (got "
                             f"{self.data.balance}); use --set data.on_device=false")

    def check_inputs(self) -> None:
        """Check everything a run reads before any work starts: each data spec's adapter name
        and root, and `model.pretrained`. `fit` calls it first.

        Not part of `__post_init__`: a saved config stays readable where its data are not (a run
        folder copied to another machine for its report).

        Raises:
            ValueError: an unknown data set name (naming the key and the valid names).
            FileNotFoundError: a missing data root or weights file (naming the key and the
                `--set` that fixes it).
        """
        for key in ("train", "val", "test"):
            for spec in getattr(self.data, key):
                check_data_spec(spec, f"data.{key}")
        if self.model.pretrained is not None:
            from fermixnet.models.pretrained import weights_path

            try:
                weights_path(self.model.pretrained)
            except FileNotFoundError as err:
                raise FileNotFoundError(
                    f"config key 'model.pretrained': {err} (set it with --set "
                    "model.pretrained=/path/to/weights.pth, or null to train from scratch)"
                ) from None

    @property
    def classes(self) -> tuple[str, ...]:
        """Canonical class names of this protocol."""
        return CANONICAL[: self.model.num_classes]

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), the inverse of `Config.from_dict`."""
        return plain_tree(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """Build and validate a config; unknown keys raise `ValueError` with close matches."""
        return build_dataclass(cls, data)

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML, atomically."""
        from fermixnet.fileio import atomic_write

        atomic_write(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False))


def check_data_spec(spec: str, key: str) -> None:
    """Check that the `name:root[,k=v]` spec under config key `key` names a registered data set
    and a root that exists.

    Raises:
        ValueError: an unknown data set name.
        FileNotFoundError: the root does not exist.
    """
    from fermixnet.data import list_datasets, parse_data_spec

    name, root, _ = parse_data_spec(spec)
    if name not in list_datasets():
        raise ValueError(f"config key '{key}': unknown data set {name!r} in {spec!r}; valid "
                         f"names: {', '.join(list_datasets())}")
    if not Path(root).exists():
        raise FileNotFoundError(
            f"{key}: data root {root} does not exist (from spec {spec!r}); pass the folder with "
            f"--set {key}={name}:/path/to/{name}"
        )


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Load a recipe (or the defaults when `path` is None) and apply `--set` overrides.

    Args:
        path: YAML file; `_base_` keys are resolved relative to it.
        overrides: `key=value` strings, e.g. `("train.epochs=10", "mix.p_mix=0.5")`.

    Returns:
        The validated `Config`; `name` defaults to the file's stem.

    Raises:
        FileNotFoundError: the file (or one of its bases) does not exist.
        ValueError: unknown key (with close matches) or a value out of range.
    """
    data = read_yaml_tree(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    if not data.get("name") and path is not None:
        data["name"] = Path(path).stem
    try:
        return Config.from_dict(data)
    except ValueError as err:
        where = f"config {path}: " if path is not None else ""
        raise ValueError(f"{where}{err}") from None
