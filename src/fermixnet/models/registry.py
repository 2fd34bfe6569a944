"""Build models by name: one-line registration per trunk, as timm does.

```python
@register_model("resnet18")
def resnet18() -> Trunk: ...

model = create_model("resnet18", num_classes=7, mid_branch=True)
```
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from fermixnet.models.fermixnet import FERMixNet
    from fermixnet.models.trunk import Trunk

_TRUNKS: dict[str, Callable[..., Trunk]] = {}

F = TypeVar("F", bound=Callable[..., "Trunk"])


def register_model(name: str) -> Callable[[F], F]:
    """Decorator registering a trunk factory under `name`.

    Raises:
        ValueError: if `name` is already registered.
    """

    def wrap(factory: F) -> F:
        if name in _TRUNKS:
            raise ValueError(f"model {name!r} is already registered")
        _TRUNKS[name] = factory
        return factory

    return wrap


def list_models() -> list[str]:
    """Names accepted by `create_model`, sorted."""
    return sorted(_TRUNKS)


def create_model(
    name: str,
    num_classes: int,
    mid_branch: bool = True,
    pretrained: str | Path | None = None,
    **kwargs: object,
) -> FERMixNet:
    """Builds FERMixNet (trunk + high-level head + optional mid-level branch) by trunk name.

    Args:
        name: one of `list_models()` (`resnet18`, `resnet50`, `ir50`).
        num_classes: number of expression classes K (>= 2).
        mid_branch: add the mid-level branch of Eq. 6; False gives the plain backbone baseline.
        pretrained: optional path of a checkpoint (foreign `.pth`/`.pth.tar` or our
            `model.safetensors`) whose trunk weights are loaded by `weights.load_pretrained`;
            classifier heads stay freshly initialised.
        **kwargs: passed to the trunk factory.

    Returns:
        The model, in training mode, on the CPU.

    Raises:
        ValueError: unknown `name` (the message lists the valid ones), `num_classes` < 2, or a
            pretrained file whose trunk does not match.
        FileNotFoundError: `pretrained` does not exist.
    """
    from fermixnet.models.fermixnet import FERMixNet

    if name not in _TRUNKS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    try:
        trunk = _TRUNKS[name](**kwargs)
    except TypeError as err:  # unknown keyword: a user error, reported as such
        raise ValueError(f"model {name!r} does not accept options {sorted(kwargs)}: {err}") from err
    model = FERMixNet(trunk, arch=name, num_classes=num_classes, mid_branch=mid_branch)
    if pretrained is not None:
        from fermixnet.models.pretrained import load_pretrained

        load_pretrained(model, pretrained)
    return model
