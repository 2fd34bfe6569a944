"""fermixnet: occlusion-robust facial expression recognition (FERMix, co-training, FERMixNet).

The main names are importable from the top level, as in timm::

    import fermixnet
    model = fermixnet.create_model("resnet18", num_classes=7, mid_branch=True)
    model, meta = fermixnet.load_checkpoint("runs/rafdb/checkpoints/best")

They are resolved lazily (PEP 562 `__getattr__`): `import fermixnet` alone does not import
torch, so the CLI's `--help` and tools that only read `__version__` start fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

# public name -> module that defines it (each fact once: the module stays the owner)
_LAZY = {
    "create_model": "fermixnet.models",
    "list_models": "fermixnet.models",
    "FERMixNet": "fermixnet.models",
    "FERMix": "fermixnet.augment",
    "CoTrainingLoss": "fermixnet.losses",
    "Predictor": "fermixnet.inference",
    "load_checkpoint": "fermixnet.models.weights",
    "save_checkpoint": "fermixnet.models.weights",
}

__all__ = [  # a literal so linters see it; tests/test_api.py checks it against _LAZY
    "CoTrainingLoss",
    "FERMix",
    "FERMixNet",
    "Predictor",
    "__version__",
    "create_model",
    "list_models",
    "load_checkpoint",
    "save_checkpoint",
]

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing alone costs ~10 ms
if TYPE_CHECKING:  # for type checkers and IDEs; at run time `__getattr__` imports on first use
    from fermixnet.augment import FERMix
    from fermixnet.inference import Predictor
    from fermixnet.losses import CoTrainingLoss
    from fermixnet.models import FERMixNet, create_model, list_models
    from fermixnet.models.weights import load_checkpoint, save_checkpoint


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fermixnet' has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=[name]), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
