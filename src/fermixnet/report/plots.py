"""PNG plots of a report (matplotlib, Agg backend): training curves, confusion matrices, accuracy
per subset / occlusion type, and a grid of FERMix samples (Fig. 3)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from fermixnet.fileio import atomic_write
from fermixnet.run_layout import RunLayout


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write(Path(path), buf.getvalue())
    return Path(path)


def plot_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> Path:
    """Loss and accuracy per epoch, one line per run (train loss; train and val accuracy)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for run, history in histories.items():
        epochs = [h["epoch"] for h in history]
        ax_loss.plot(epochs, [h.get("train_loss") for h in history], marker="o", label=run)
        ax_acc.plot(epochs, [h.get("train_acc") for h in history], ls="--", marker=".",
                    label=f"{run} train")
        if any(h.get("val_accuracy") is not None for h in history):
            ax_acc.plot(epochs, [h.get("val_accuracy") for h in history], marker="o",
                        label=f"{run} val")
    ax_loss.set(xlabel="epoch", ylabel="loss (Eq. 9)", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str], path: Path,
                   title: str = "") -> Path:
    """Row-normalised confusion matrix (rows: true class) with counts in the cells."""
    conf = torch.tensor(confusion, dtype=torch.float64)
    norm = conf / conf.sum(dim=1, keepdim=True).clamp(min=1)
    fig, ax = plt.subplots(figsize=(0.6 * len(classes) + 2, 0.6 * len(classes) + 1.5))
    ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, int(conf[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _save(fig, path)


def plot_subset_accuracy(values: Mapping[str, Mapping[str, float | None]], path: Path,
                         title: str = "",
                         errors: Mapping[str, Mapping[str, float]] | None = None) -> Path:
    """Grouped bars: accuracy of each run (`values[run][subset]`) on each subset, with error
    bars from `errors[run][subset]` (e.g. the std over seeds) where given."""
    runs = list(values)
    subsets: list[str] = []
    for run in runs:
        subsets += [s for s in values[run] if s not in subsets]
    width = 0.8 / max(len(runs), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(subsets) * max(1, len(runs)) ** 0.5), 3.6))
    for k, run in enumerate(runs):
        ys = [values[run].get(s) or 0.0 for s in subsets]
        err = [(errors or {}).get(run, {}).get(s, 0.0) for s in subsets]
        ax.bar([i + k * width for i in range(len(subsets))], ys, width, label=run,
               yerr=err if any(err) else None, capsize=2)
    ax.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(subsets))], subsets,
                  rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="accuracy", ylim=(0, 1), title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def mix_sample_columns(images: torch.Tensor, mix_cfg: Any, seed: int = 0,
                       landmarks: torch.Tensor | None = None):
    """Mixed versions of a few uint8 images: FERMix's six regions (Fig. 3), or six draws of
    another mixing method. Partners are the previous image (a cyclic shift).

    Args:
        images: (N, 3, H, W) uint8.
        mix_cfg: the config's `mix` section.
        seed: the draws of a method other than FERMix.
        landmarks: (N, 5, 2) in the images' pixels (NaN rows: none), for a mixer that places
            its regions by them (`fermix_landmarks`: each face's own regions, the partner
            warped onto it); None there gives every pair FERMix's fixed regions.

    Returns:
        list of `(title, float images (N, 3, H, W) in [0, 1])`, the originals first.
    """
    from fermixnet.augment import (
        REGIONS,
        FERMix,
        MixParams,
        build_mixer,
        one_hot,
        region_lambda,
    )

    x = images.float() / 255.0
    y = one_hot(torch.zeros(len(x), dtype=torch.long), 2)
    perm = torch.roll(torch.arange(len(x)), 1)
    columns = [("original", x)]
    mixer = build_mixer(mix_cfg)
    if isinstance(mixer, FERMix):  # and its landmark-placed subclass: the six regions
        extra = {"landmarks": landmarks} if getattr(mixer, "uses_landmarks", False) else {}
        for region in REGIONS:
            params = MixParams(region, perm, region_lambda(region))
            columns.append((region, mixer.apply(x, y, params, **extra)[0]))
    else:
        g = torch.Generator().manual_seed(seed)
        for k in range(6):
            columns.append((f"{mix_cfg.method} {k + 1}", mixer(x, y, generator=g)[0]))
    return columns


def mix_samples_preview(images: torch.Tensor, cfg: Any, run_dir: Path,
                        landmarks: torch.Tensor | None = None) -> None:
    """`fit`'s `preview` hook: `plots/mix_samples.png` of the run (once; not without mixing);
    `landmarks` as in `mix_sample_columns`."""
    path = RunLayout(run_dir).mix_samples
    if path.exists() or cfg.mix.method == "none":
        return
    plot_mix_samples(images, cfg.mix, path, seed=cfg.train.seed, landmarks=landmarks)


def plot_mix_samples(images: torch.Tensor, mix_cfg: Any, path: Path, seed: int = 0,
                     landmarks: torch.Tensor | None = None) -> Path:
    """Grid of mixed training images: rows are images, columns the original and mixed versions
    (`mix_sample_columns`)."""
    columns = mix_sample_columns(images, mix_cfg, seed, landmarks)
    rows = len(images)
    fig, axes = plt.subplots(rows, len(columns), figsize=(1.4 * len(columns), 1.4 * rows),
                             squeeze=False)
    for j, (title, batch) in enumerate(columns):
        for i in range(rows):
            ax = axes[i][j]
            ax.imshow(batch[i].clamp(0, 1).permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=8)
    return _save(fig, path)
