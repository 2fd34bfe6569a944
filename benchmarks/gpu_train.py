"""GPU training throughput at 224 px (bf16 autocast, channels_last) and the RAF-DB projection.

Two data paths feed the same FERMix co-training step (`steps.build_trainer`, ResNet-18 FERMixNet,
SGD, Eq. 9), over a RAF-DB-sized set (12,271 training images, Sec. 4.1.1) of uint8 images:

- ``device``: the whole set as one uint8 tensor on the GPU (1.8 GB at 224 px), batches gathered
  and flipped/cropped there (`fermixnet.data.device_loader.TensorBatchLoader`, the engine's
  ``data.on_device`` path): no host work per image.
- ``workers``: the set in host memory behind a DataLoader with per-sample uint8 transforms (the
  engine's ``flip_crop`` preset) in ``--workers`` processes, pinned memory, as the default
  trainer does.

Image content does not change the speed, so the images are random uint8 drawn on the device.
The projection of the paper's recipe (Sec. 4.2: 50 epochs, batch 64 + 64 mixed) is
``50 * (steps per epoch * step time + evaluation of the 3,068 test images)``.

Run: ``python benchmarks/gpu_train.py [--out FILE] [--steps 60] [--compile]``.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from common import base_parser, finish, setup, sync, train_transform
from fermixnet.data.device_loader import TensorBatchLoader
from steps import build_trainer

RAFDB_TRAIN, RAFDB_TEST, EPOCHS = 12271, 3068, 50


class _HostSet(Dataset):
    """Per-sample access to a host uint8 tensor (N, 3, H, W), with a per-sample transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), int(self.labels[i])


def time_steps(trainer, batches, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per co-training step over ``steps`` batches after ``warmup`` (data included)."""
    it = iter(batches)

    def next_batch():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(batches)
            return next(it)

    for _ in range(warmup):
        u8, y = next_batch()
        trainer.cotrain(u8.to(device, non_blocking=True), y.to(device, non_blocking=True))
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        u8, y = next_batch()
        trainer.cotrain(u8.to(device, non_blocking=True), y.to(device, non_blocking=True))
    sync(device)
    return (time.perf_counter() - start) / steps


def eval_seconds(model, size: int, device: torch.device, amp: torch.dtype | None) -> float:
    """Time to classify the RAF-DB test set (3,068 images) at batch 256."""
    x = torch.randint(0, 256, (256, 3, size, size), dtype=torch.uint8, device=device)
    model.eval()
    ctx = torch.autocast(device.type, dtype=amp) if amp else torch.autocast(device.type,
                                                                             enabled=False)
    with torch.inference_mode(), ctx:
        def run():
            for _ in range((RAFDB_TEST + 255) // 256):
                model(x.float().contiguous(memory_format=torch.channels_last))
        run()
        sync(device)
        start = time.perf_counter()
        run()
        sync(device)
    model.train()
    return time.perf_counter() - start


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64, help="main images per step (paper: 64)")
    parser.add_argument("--images", type=int, default=RAFDB_TRAIN)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers (0: skip)")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.batch, args.images, args.steps, args.workers = 32, 4, 64, 3, 0
    device = setup(args)
    amp = None if args.fp32 or device.type != "cuda" else torch.bfloat16
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    gen = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, args.size, args.size), dtype=torch.uint8,
                           device=device, generator=gen)
    labels = torch.randint(0, 7, (args.images,), device=device, generator=gen)
    pad = round(args.size * 0.125)
    trainer = build_trainer(device, channels_last=True, amp_dtype=amp)
    warmup = 2 if args.smoke else 15
    res: dict[str, Any] = {"size": args.size, "batch_main": args.batch, "images": args.images,
                           "amp": str(amp), "steps_timed": args.steps}
    loader = TensorBatchLoader(images, labels, args.batch, padding=pad)
    res["device_step_s"] = time_steps(trainer, loader, args.steps, warmup, device)
    if args.workers > 0:
        host = _HostSet(images.cpu(), labels.cpu(), train_transform(args.size))
        dl = DataLoader(host, batch_size=args.batch, shuffle=True, drop_last=True,
                        num_workers=args.workers, pin_memory=device.type == "cuda",
                        persistent_workers=True)
        res["workers"] = args.workers
        res["workers_step_s"] = time_steps(trainer, dl, args.steps, warmup, device)
    if args.compile:
        trainer.model.compile()
        res["compiled_device_step_s"] = time_steps(trainer, loader, args.steps, warmup, device)
    res["eval_s"] = eval_seconds(trainer.model, args.size, device, amp)
    steps_per_epoch = args.images // args.batch
    for key in [k for k in res if k.endswith("step_s")]:
        path = key[: -len("_step_s")]
        res[f"{path}_images_per_s"] = args.batch / res[key]  # main images (+ as many mixed)
        res[f"{path}_projected_50_epochs_min"] = (
            EPOCHS * (steps_per_epoch * res[key] + res["eval_s"]) / 60)
    if device.type == "cuda":
        res["cuda_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    finish("gpu_train", args, res, device)


if __name__ == "__main__":
    main()
