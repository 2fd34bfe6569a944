"""Grad-CAM of FERMixNet's high-level and mid-level branches (the paper's Figs. 9 and 10).

Grad-CAM (Selvaraju et al. 2017): the class score's gradients, averaged over the spatial grid,
weight the feature maps; the ReLU of the weighted sum is the map. The high-level map uses the
conv5_x output and the high head's logit; the mid-level map uses the mid branch's ReLU'd 1x1-conv
output and the mid head's logit (``model.feature_layers()``).

Written on forward/backward hooks rather than with ``grad-cam`` (pytorch-grad-cam): that package
installs cleanly beside our torch and gives the same maps (a test compares them when it is
installed), but it pulls scikit-learn, SciPy, ttach and OpenCV into the install for a computation
of a few lines, and its targets expect a tensor output, not our two-headed one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

ScoreFn = Callable[[object], Tensor]  # model output -> (B,) scores to explain


def grad_cam(model: nn.Module, x: Tensor, layer: nn.Module, score_fn: ScoreFn) -> Tensor:
    """Grad-CAM maps of ``layer`` for the scores ``score_fn(model(x))``.

    Args:
        model: the network (left in its train/eval mode; parameters are not changed).
        x: (B, 3, H, W) normalised input.
        layer: module whose output is the feature map (B, C, h, w) to explain.
        score_fn: maps the model output to (B,) scores (e.g. one class's logit per sample).

    Returns:
        (B, H, W) maps in [0, 1] (each divided by its maximum; all zero where the ReLU'd map
        is zero), upsampled bilinearly to the input size.
    """
    store: dict[str, Tensor] = {}

    def hook(_m: nn.Module, _inp: object, out: Tensor) -> None:
        store["act"] = out
        out.register_hook(lambda g: store.__setitem__("grad", g))

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)  # hooks fire even if the weights are frozen
            scores = score_fn(model(x))
            grads = torch.autograd.grad(scores.sum(), store["act"], retain_graph=False)[0]
    finally:
        handle.remove()
    act = store["act"].detach()  # (B, C, h, w)
    weights = grads.detach().mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    cam = F.relu((weights * act).sum(1, keepdim=True))  # (B, 1, h, w)
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return (cam / peak).clamp(0, 1)


def branch_cams(model: nn.Module, x: Tensor, targets: Sequence[int]) -> dict[str, Tensor]:
    """High- and mid-level Grad-CAM maps, each for its own head's logit of ``targets[i]``.

    Returns:
        ``{"high": (B, H, W), "mid": (B, H, W)}`` (``mid`` missing without the branch).
    """
    idx = torch.as_tensor(list(targets), device=x.device).long()[:, None]
    layers = model.feature_layers()
    out = {"high": grad_cam(model, x, layers["high"], lambda o: o.high.gather(1, idx)[:, 0])}
    if getattr(model, "mid_branch", True) and "mid" in layers:
        out["mid"] = grad_cam(model, x, layers["mid"], lambda o: o.mid.gather(1, idx)[:, 0])
    return out


def overlay(crop: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] map (jet colours) onto an (H, W, 3) uint8 crop."""
    from matplotlib import colormaps

    heat = colormaps["jet"](cam)[..., :3]
    return ((1 - alpha) * crop / 255.0 + alpha * heat).clip(0, 1)


def save_figure(
    rows: Sequence[tuple[np.ndarray, dict[str, np.ndarray], str]], path: str | os.PathLike[str]
) -> Path:
    """A PNG grid: per row the crop, then each branch's map on it; written atomically.

    Args:
        rows: ``(crop uint8 (H, W, 3), {"high": map, "mid": map}, row title)``.
        path: PNG file to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = 1 + max(len(maps) for _, maps, _ in rows)
    fig, axes = plt.subplots(
        len(rows), n_cols, figsize=(2.4 * n_cols, 2.5 * len(rows)), squeeze=False
    )
    for r, (crop, maps, title) in enumerate(rows):
        axes[r, 0].imshow(crop)
        axes[r, 0].set_title(title, fontsize=8)
        for c, (name, cam) in enumerate(maps.items(), start=1):
            axes[r, c].imshow(overlay(crop, cam))
            axes[r, c].set_title(f"{name}-level branch", fontsize=8)
        for ax in axes[r]:
            ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _to_uint8(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Inverse of `predictor.normalise_crops` for one image (3, H, W) -> (H, W, 3) uint8."""
    img = x.cpu() * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
    return (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def mix_pair(a: Tensor, b: Tensor, region: str) -> tuple[Tensor, float]:
    """The FERMix sample of ``a`` with ``b`` (region from ``b``, Eqs. 1-4) and a's weight lambda."""
    from fermixnet.augment import FERMix, MixParams, region_lambda

    mix = FERMix()
    x = torch.stack([a, b])
    params = MixParams(region=region, perm=torch.tensor([1, 0]), lam=region_lambda(region))
    y = torch.eye(2)
    x_mix, _ = mix.apply(x, y, params)
    return x_mix[0], mix.lam_for(params, a.shape[-2], a.shape[-1])


def explain_files(
    image: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    detector: str = "auto",
    mix_with: str | os.PathLike[str] | None = None,
    region: str = "upper",
    device: str = "cpu",
) -> list[Path]:
    """Write Grad-CAM figures for the first face of ``image`` (and a FERMix sample).

    ``branches.png`` (Fig. 10): the aligned face, the high-level and the mid-level map for the
    predicted class. With ``mix_with``, ``fermix.png`` (Fig. 9): the FERMix sample of the two
    faces (``region`` taken from the second) with both branches' maps for each of its two labels
    (each source face's predicted class).

    Raises:
        ValueError: no face found in an image (the message names it).
    """
    from fermixnet.inference.backends import normalise_crops, predictor_options
    from fermixnet.inference.predictor import Predictor
    from fermixnet.models.weights import load_checkpoint

    dev = torch.device(device)
    model, meta = load_checkpoint(str(checkpoint), device=str(dev))
    model.eval()
    opts = predictor_options(meta)
    pred = Predictor.from_model(model, meta, dev, detector=detector)
    crops = [_first_crop(pred, p) for p in ([image] if mix_with is None else [image, mix_with])]
    x = torch.from_numpy(normalise_crops(np.stack(crops), opts["mean"], opts["std"])).to(dev)
    probs = pred.classify(np.stack(crops))
    top = [int(i) for i in probs.argmax(1)]
    classes = pred.classes
    rows = []
    cams = branch_cams(model, x[:1], top[:1])
    title = f"{classes[top[0]]} {probs[0, top[0]]:.2f}"
    rows.append((crops[0], {k: v[0].cpu().numpy() for k, v in cams.items()}, title))
    written = [save_figure(rows, Path(out) / "branches.png")]
    if mix_with is not None:
        x_mix, lam = mix_pair(x[0], x[1], region)
        mixed = _to_uint8(x_mix, opts["mean"], opts["std"])
        mix_rows = []
        for label, weight in ((top[0], lam), (top[1], 1.0 - lam)):
            cams = branch_cams(model, x_mix[None], [label])
            maps = {k: v[0].cpu().numpy() for k, v in cams.items()}
            mix_rows.append((mixed, maps, f"label {classes[label]} (weight {weight:.2f})"))
        written.append(save_figure(mix_rows, Path(out) / "fermix.png"))
    return written


def _first_crop(pred: object, path: str | os.PathLike[str]) -> np.ndarray:
    from fermixnet.inference.images import read_image

    image, _ = read_image(path)
    faces = pred.detector.detect(image)  # type: ignore[attr-defined]
    if not faces:
        raise ValueError(f"{path}: no face found (try --detector aligned for face crops)")
    return pred.crop(image, faces[0])  # type: ignore[attr-defined]
