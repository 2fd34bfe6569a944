"""The two-level co-training loss of FERMixNet (paper, Sec. 3.4, Eqs. 7-9)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch.nn.functional as F
from torch import Tensor, nn


class TwoHeadOutput(Protocol):
    """What the loss needs of a model output (FERMixNetOutput satisfies it)."""

    high: Tensor
    mid: Tensor | None


@dataclass
class LossOutput:
    """The total loss and its named, unweighted terms (for logging)."""

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)


def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Eqs. 7-8: mean over the batch of ``-sum_i y_i log softmax(logits)_i``.

    ``target`` is (B,) class indices or (B, K) probabilities (the mixed labels of Eq. 5).
    """
    if target.ndim == 1:
        return F.cross_entropy(logits, target.long())
    return -(target.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _check(out: TwoHeadOutput, target: Tensor, name: str) -> None:
    batch, classes = out.high.shape
    if target.shape[0] != batch or (target.ndim == 2 and target.shape[1] != classes):
        raise ValueError(
            f"{name} labels of shape {tuple(target.shape)} do not match logits of shape "
            f"{tuple(out.high.shape)}; expected ({batch},) indices or ({batch}, {classes}) "
            "probabilities"
        )


class CoTrainingLoss(nn.Module):
    """Eq. 9: weights the mixed vs main image by ``alpha`` and high vs mid level by ``beta``.

    - main and mixed given (``r < p_mix``, co-training)::

        alpha * (beta * L_mix^h + (1-beta) * L_mix^m)
          + (1-alpha) * (beta * L_main^h + (1-beta) * L_main^m)

    - main only (``r >= p_mix``): ``beta * L_main^h + (1 - beta) * L_main^m``.
    - mixed only: ``beta * L_mix^h + (1 - beta) * L_mix^m``; this is the alternative that Fig. 5
      compares against (train on the mixed *or* the main image), selected with
      ``mode="alternate"``, in which passing both raises.

    Without a mid-level branch (``mid is None``) the level weight is 1 on the high head, so the
    plain ResNet baseline trains on plain cross-entropy through the same code path.

    Args:
        alpha: weight of the mixed image, in (0, 1) (paper: 0.5).
        beta: weight of the high-level head, in (0, 1) (paper: 0.5).
        mode: ``"cotrain"`` (the paper's method) or ``"alternate"`` (Fig. 5's comparison).
    """

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, mode: str = "cotrain"):
        super().__init__()
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"loss.{name} must be in [0, 1], got {value}")
        if mode not in ("cotrain", "alternate"):
            raise ValueError(f"loss mode must be 'cotrain' or 'alternate', got {mode!r}")
        self.alpha, self.beta, self.mode = alpha, beta, mode

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, mode={self.mode!r}"

    def _level_loss(self, out: TwoHeadOutput, target: Tensor, prefix: str, terms: dict) -> Tensor:
        """beta * L^h + (1 - beta) * L^m for one input (Eqs. 7-8 inside Eq. 9)."""
        terms[f"{prefix}_high"] = loss_h = soft_cross_entropy(out.high, target)
        if out.mid is None:
            return loss_h
        terms[f"{prefix}_mid"] = loss_m = soft_cross_entropy(out.mid, target)
        return self.beta * loss_h + (1 - self.beta) * loss_m

    def forward(
        self,
        main_out: TwoHeadOutput | None,
        y: Tensor | None,
        mixed_out: TwoHeadOutput | None = None,
        y_mix: Tensor | None = None,
    ) -> LossOutput:
        has_main, has_mix = main_out is not None, mixed_out is not None
        if not (has_main or has_mix):
            raise ValueError("CoTrainingLoss needs the main output, the mixed output, or both")
        if has_main and self.mode == "alternate" and has_mix:
            raise ValueError("mode='alternate' trains on the main or the mixed image, not both")
        terms: dict[str, Tensor] = {}
        if has_main:
            if y is None:
                raise ValueError("labels y are required with the main output")
            _check(main_out, y, "main")
            main_loss = self._level_loss(main_out, y, "main", terms)
        if has_mix:
            if y_mix is None:
                raise ValueError("mixed labels y_mix are required with the mixed output")
            _check(mixed_out, y_mix, "mixed")
            mix_loss = self._level_loss(mixed_out, y_mix, "mix", terms)
        if has_main and has_mix:
            total = self.alpha * mix_loss + (1 - self.alpha) * main_loss
        else:
            total = main_loss if has_main else mix_loss
        return LossOutput(total=total, terms=terms)


__all__ = ["CoTrainingLoss", "LossOutput", "soft_cross_entropy"]

