"""Loading trunk weights from foreign checkpoints, with a match report.

Known layouts (all read with `torch.load(weights_only=True)`, never unpickled as code):
- torchvision ResNet state dicts (ImageNet files, `resnet18_msceleb.pth`), raw or wrapped in
  `{"state_dict": ...}`;
- DataParallel dicts with `module.` prefixes and extra layers, e.g. `ijba_res18_naive.pth.tar`
  (DREAM's MS-Celeb-1M ResNet-18 used by RAN/SCN: `module.conv1.weight` .. `module.layer4.*`, plus
  a `module.feature` Linear(512, 256) and `module.fc` classifier);
- face.evoLVe's flat IR-50 (`input_layer.*`, `body.N.*`, `output_layer.*`);
- our own `model.safetensors` (`trunk.*`, `fc.*`, `mid.*`).

Classifier heads (the source's `fc`/`feature`/`output_layer`, our `fc`/`mid`) are never loaded: the
model's heads are re-initialised. Loading fails, naming the file, unless every trunk tensor is
found with the right shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file

from fermixnet.models.contract import WEIGHTS_NAME

if TYPE_CHECKING:
    from fermixnet.models.fermixnet import FERMixNet

logger = logging.getLogger(__name__)

# Wrapper prefixes stripped from keys: DataParallel/DDP and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Keys under which training scripts commonly nest the state dict.
_NESTED_KEYS = ("state_dict", "model_state_dict", "model")
# BatchNorm counters absent from files written before PyTorch 0.4.1; they do not affect outputs.
_OPTIONAL_SUFFIX = "num_batches_tracked"

WHERE_TO_GET = (
    "MS-Celeb-1M ResNet-18 files (resnet18_msceleb.pth, ijba_res18_naive.pth.tar) are linked from "
    "the RAN/SCN/DAN repositories; the IR-50 file from face.evoLVe; pass the path as the config "
    "key model.pretrained (fermixnet train ... --set model.pretrained=PATH)"
)


@dataclass
class LoadReport:
    """What `load_pretrained` did with each tensor of the source file.

    Attributes:
        source: the file read.
        matched: trunk keys loaded.
        missing: trunk keys the file lacks (loading fails if any).
        unexpected: source keys that are neither trunk nor a known head (ignored).
        skipped_head: source classifier-head keys, deliberately not loaded.
        shape_mismatch: trunk keys whose shapes differ (loading fails if any).
    """

    source: str
    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped_head: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every trunk tensor was found with the right shape."""
        return bool(self.matched) and not self.missing and not self.shape_mismatch

    @property
    def counts(self) -> str:
        """The counts of each list, e.g. '122 trunk tensors matched, 0 missing, ...'."""
        return (f"{len(self.matched)} trunk tensors matched, {len(self.missing)} missing, "
                f"{len(self.shape_mismatch)} shape mismatches, {len(self.unexpected)} unexpected, "
                f"{len(self.skipped_head)} head tensors skipped")

    @property
    def summary(self) -> str:
        """One line: the source file and the counts."""
        return f"{self.source}: {self.counts}"


def weights_path(path: str | Path) -> Path:
    """The weights file that `path` names: the file itself, or a checkpoint folder's
    `model.safetensors`.

    Raises:
        FileNotFoundError: there is no such file (the message says where such files come from).
    """
    path = Path(path)
    if path.is_dir() and (path / WEIGHTS_NAME).is_file():
        path = path / WEIGHTS_NAME  # one of our checkpoint folders
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path} ({WHERE_TO_GET})")
    return path


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Reads a `.safetensors` file or a torch file (weights only) and returns its tensors.

    Unwraps `{"state_dict": ...}`-style nesting and strips `module.`/`_orig_mod.` prefixes.

    Raises:
        FileNotFoundError: the file does not exist (the message says where such files come from).
        ValueError: the file cannot be read safely or holds no tensors.
    """
    path = weights_path(path)
    try:
        if path.suffix == ".safetensors":
            obj: Any = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as err:  # corrupt or unsafe files raise many types; all mean "not weights"
        raise ValueError(f"{path}: cannot be read as a weights-only checkpoint "
                         f"({type(err).__name__}: {err})") from err
    for _ in range(3):  # e.g. {"state_dict": {...}} or {"model": {"state_dict": ...}}
        if not isinstance(obj, Mapping):
            break
        nested = next((obj[k] for k in _NESTED_KEYS if isinstance(obj.get(k), Mapping)), None)
        if nested is None:
            break
        obj = nested
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict, found {type(obj).__name__}")
    state = {_strip(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ValueError(f"{path}: holds no tensors (expected a state dict)")
    return state


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def _to_trunk_keys(
    state: Mapping[str, torch.Tensor], head_prefixes: tuple[str, ...]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Splits source tensors into trunk-named tensors and skipped head keys."""
    ours = any(k.startswith("trunk.") for k in state)
    trunk: dict[str, torch.Tensor] = {}
    heads: list[str] = []
    for key, value in state.items():
        if ours:  # our own checkpoint: everything outside `trunk.` is a head (fc, mid)
            if key.startswith("trunk."):
                trunk[key[len("trunk."):]] = value
            else:
                heads.append(key)
        elif key.startswith(head_prefixes):
            heads.append(key)
        else:
            trunk[key] = value
    return trunk, heads


def load_pretrained(model: FERMixNet, path: str | Path) -> LoadReport:
    """Loads the trunk of `model` from a pretrained file and re-initialises its heads.

    Args:
        model: the FERMixNet whose trunk is filled in place.
        path: a foreign `.pth`/`.pth.tar` or our `model.safetensors` (see the module docstring).

    Returns:
        The `LoadReport`; its summary is also logged at INFO level.

    Raises:
        FileNotFoundError: missing file.
        ValueError: naming the file, when any trunk tensor is missing or has another shape
            (typically a file of another architecture).
    """
    source = read_state_dict(path)
    own = model.trunk.state_dict()
    src, heads = _to_trunk_keys(source, model.trunk.head_prefixes)
    report = LoadReport(source=str(path), skipped_head=sorted(heads))
    for key, value in src.items():
        if key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.shape_mismatch.append(
                f"{key}: file {tuple(value.shape)} vs model {tuple(own[key].shape)}")
        else:
            report.matched.append(key)
    report.missing = [k for k in own if k not in src and not k.endswith(_OPTIONAL_SUFFIX)]
    logger.info("load_pretrained %s", report.summary)
    if not report.ok:
        if report.shape_mismatch:
            first = f"shape mismatch {report.shape_mismatch[0]}"
        else:
            first = f"missing trunk tensor {report.missing[0]!r}" if report.missing else "none"
        raise ValueError(
            f"{path}: does not fit the {model.arch!r} trunk ({report.counts}); first problem: "
            f"{first}. Is it a checkpoint of another architecture?")
    merged = dict(own)
    merged.update({k: src[k] for k in report.matched})
    model.trunk.load_state_dict(merged, strict=True)  # every key is present: nothing silent
    model.reset_heads()
    return report
