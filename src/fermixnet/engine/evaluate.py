"""Evaluation: accuracy, balanced accuracy, per-class accuracy and confusion matrix, for the fused,
high-level and mid-level heads (Sec. 3.4), on a whole test set and on each of its subsets
(occluded, occlusion type, occluder, pose > 30 / 45 degrees; Tables 2, 6, 7)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from fermixnet.engine.distributed import all_gather_objects, process_rank
from fermixnet.fileio import atomic_write
from fermixnet.models.contract import to_model_input
from fermixnet.progress import progress_bar

HEADS: tuple[str, ...] = ("fused", "high", "mid")


class IndexedDataset(Dataset):
    """Yield `(image, label, index)` so predictions can be put back in order after sharding."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        image, label = self.base[i]
        return image, label, i


def head_logits(out: Any) -> dict[str, torch.Tensor]:
    """The logits of each head present in a `FERMixNetOutput` (`mid` is absent without branch)."""
    heads = {"fused": out.logits, "high": out.high}
    if getattr(out, "mid", None) is not None:
        heads["mid"] = out.mid
    return heads


@dataclass(frozen=True)
class ModelInputs:
    """How uint8 batches become model input on this process (`models.contract.to_model_input`):
    the device, the normalisation, the memory format and the autocast dtype. Training
    (`Runtime.inputs`) and `fermixnet eval` build one and every evaluation uses it."""

    device: torch.device
    mean: Sequence[float]
    std: Sequence[float]
    channels_last: bool = False
    """Convert inputs to channels_last."""
    amp_dtype: torch.dtype | None = None
    """Autocast dtype (None: full precision)."""


@torch.no_grad()
def predict(
    model: torch.nn.Module, loader: DataLoader, inputs: ModelInputs
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Run the model over a loader of `(uint8 image, label[, index])` batches.

    Returns:
        `(logits per head (N, K) float32 on CPU, labels (N,), dataset indices (N,))`.
    """
    device, amp_dtype = inputs.device, inputs.amp_dtype
    model.eval()
    mean_t = torch.tensor(inputs.mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(inputs.std, device=device).view(1, 3, 1, 1)
    chunks: dict[str, list[torch.Tensor]] = {}
    labels, indices = [], []
    seen = 0
    bar = progress_bar(loader, desc="eval", unit="batch", disable=process_rank() != 0,
                       leave=False)
    for batch in bar:
        x, y = batch[0], batch[1]
        # Loaders without indices (plain `(image, label)` batches) count in order.
        idx = batch[2] if len(batch) > 2 else torch.arange(seen, seen + len(y))
        seen += len(y)
        x = to_model_input(x, device, mean_t, std_t, inputs.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16,
                            enabled=amp_dtype is not None):
            out = model(x)
        for head, logits in head_logits(out).items():
            chunks.setdefault(head, []).append(logits.float().cpu())
        labels.append(torch.as_tensor(y))
        indices.append(torch.as_tensor(idx))
    if not labels:
        return {}, torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    logits = {h: torch.cat(c) for h, c in chunks.items()}
    return logits, torch.cat(labels).long(), torch.cat(indices).long()


def gather_predictions(
    logits: dict[str, torch.Tensor], labels: torch.Tensor, indices: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Collect every process's shard (no-op on one process) and restore dataset order."""
    parts = all_gather_objects((logits, labels, indices))
    parts = [p for p in parts if len(p[1])]
    if not parts:
        return {}, torch.empty(0, dtype=torch.long)
    idx = torch.cat([p[2] for p in parts])
    order = torch.argsort(idx)
    merged = {h: torch.cat([p[0][h] for p in parts])[order] for h in parts[0][0]}
    return merged, torch.cat([p[1] for p in parts])[order]


def classification_metrics(
    pred: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall over the classes present), per-class accuracy
    (None for an absent class) and the confusion matrix (rows: true class, columns: predicted)."""
    k = len(classes)
    n = int(labels.numel())
    conf = torch.zeros(k, k, dtype=torch.long)
    if n:
        conf.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    support = conf.sum(dim=1)
    recall = conf.diag().double() / support.clamp(min=1)
    present = support > 0
    return {
        "n": n,
        "accuracy": float(conf.diag().sum()) / n if n else None,
        "balanced_accuracy": float(recall[present].mean()) if bool(present.any()) else None,
        "per_class": {c: (float(recall[i]) if present[i] else None) for i, c in enumerate(classes)},
        "support": {c: int(support[i]) for i, c in enumerate(classes)},
        "confusion": conf.tolist(),
    }


@dataclass
class EvalResult:
    """Metrics of one test set: `heads[head]["overall" | "subsets"][...]` (see `to_dict`)."""

    dataset: str
    classes: tuple[str, ...]
    heads: dict[str, dict[str, Any]] = field(default_factory=dict)

    def accuracy(self, head: str = "fused", subset: str | None = None) -> float | None:
        """Accuracy of a head on the whole set (`subset=None`) or on one subset."""
        block = self.heads[head]
        return (block["overall"] if subset is None else block["subsets"][subset])["accuracy"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: dataset, classes, and per head the overall and per-subset metrics."""
        return {"dataset": self.dataset, "classes": list(self.classes), "heads": self.heads}

    def save(self, path: Path) -> None:
        """Write `to_dict()` as JSON atomically."""
        atomic_write(Path(path), json.dumps(self.to_dict(), indent=1))


def compute_eval_result(
    dataset: str,
    logits: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    classes: Sequence[str],
    subsets: Mapping[str, Sequence[int]] | None = None,
) -> EvalResult:
    """Metrics per head on the whole set and on each subset (lists of dataset indices)."""
    result = EvalResult(dataset=dataset, classes=tuple(classes))
    for head in HEADS:
        if head not in logits:
            continue
        pred = logits[head].argmax(dim=1)
        block: dict[str, Any] = {"overall": classification_metrics(pred, labels, classes),
                                 "subsets": {}}
        for name, idx in (subsets or {}).items():
            sel = torch.as_tensor(list(idx), dtype=torch.long)
            block["subsets"][name] = classification_metrics(pred[sel], labels[sel], classes)
        result.heads[head] = block
    return result


def evaluate(
    model: torch.nn.Module,
    loader: DataLoader,
    inputs: ModelInputs,
    classes: Sequence[str],
    *,
    subsets: Mapping[str, Sequence[int]] | None = None,
    dataset: str = "test",
) -> EvalResult:
    """Evaluate every head on a loader of `(uint8 image, label, index)` batches.

    Under `torchrun` each process passes its shard (see `shard_loader`); the predictions are
    gathered so that every process returns the metrics of the whole set.

    Args:
        model: the (unwrapped) model; put in eval mode here.
        loader: batches of `(uint8 (B, 3, H, W), labels (B,)[, dataset indices (B,)])`; the
            indices are needed only for sharded evaluation under torchrun (`shard_loader`).
        inputs: device, normalisation, memory format and precision of the model's input.
        classes: class names, in label order.
        subsets: name -> dataset indices (from `ds.subsets()`).
        dataset: name recorded in the result.
    """
    logits, labels, indices = predict(model, loader, inputs=inputs)
    logits, labels = gather_predictions(logits, labels, indices)
    return compute_eval_result(dataset, logits, labels, classes, subsets)


def shard_loader(
    dataset: Dataset, batch_size: int, workers: int, rank: int = 0, world_size: int = 1
) -> DataLoader:
    """A loader over this process's strided shard of `dataset`, yielding indices too (no padding,
    unlike `DistributedSampler`, so every sample counts exactly once)."""
    indexed = IndexedDataset(dataset)
    shard = torch.utils.data.Subset(indexed, range(rank, len(indexed), world_size))
    return DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=workers,
                      persistent_workers=False)
