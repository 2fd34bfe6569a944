"""Loader benchmark: images/s of the training data path, against per-sample PIL decoding.

Three paths over the same JPEG files (generated here, 100x100 like RAF-DB's aligned faces), each
yielding training batches at ``--size`` with random flip + random crop (the RAF-DB recipe):

- ``pil``: what peer FER code does: ``ImageFolder``-style per-sample ``PIL.Image.open``, resize,
  flip, crop, ``ToTensor``, ``Normalize`` in DataLoader workers (float batches).
- ``cache``: fermixnet's path: `build_cache` (uint8 memmap at model size, built once) +
  `ImageTensorDataset` + the engine's per-sample ``flip_crop`` preset on uint8 tensors in workers.
- ``cache_batched``: the cache gathered a batch at a time and augmented as a batch
  (`fermixnet.data.device_loader.TensorBatchLoader`, no per-sample Python), as the engine's
  ``data.on_device`` path does on the device.

Each is compared with the model's training throughput (main images per second of the co-training
step at the same size, batch 64); pass ``--train-ips`` to reuse a number measured elsewhere.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from common import MEAN, STD, base_parser, finish, median, setup, time_fn, train_transform
from fermixnet.data.device_loader import TensorBatchLoader

CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")


def write_jpegs(root: Path, count: int, side: int = 100, seed: int = 0) -> None:
    """``root/train/<class>/<i>.jpg``: smooth random images (they decode like photos, not noise)."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        low = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        image = Image.fromarray(low).resize((side, side), Image.Resampling.BICUBIC)
        folder = root / "train" / CLASSES[i % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{i:05d}.jpg", quality=90)


def pil_loader(root: Path, size: int, batch: int, workers: int) -> DataLoader:
    """The per-sample PIL path of peer FER code (ImageFolder + torchvision transforms)."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([
        transforms.Resize((size, size)),
        transforms.RandomHorizontalFlip(),
        transforms.RandomCrop(size, padding=round(size * 0.125)),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    ds = datasets.ImageFolder(str(root / "train"), transform=tf)
    return DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)


def open_cache(root: Path, size: int, cache_dir: Path):
    """fermixnet's uint8 cache of the JPEG folder at ``size`` (built on first call)."""
    from fermixnet.data import create_dataset
    from fermixnet.data.cache import build_cache

    return build_cache(create_dataset("folder", str(root), "train"), size=(size, size),
                       cache_dir=cache_dir)


def cache_loader(cached, size: int, batch: int, workers: int) -> DataLoader:
    """fermixnet's per-sample path: cache + engine transforms (uint8) in DataLoader workers."""
    from fermixnet.data.cached import ImageTensorDataset

    ds = ImageTensorDataset(cached, transform=train_transform(size))
    return DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)


def images_per_s(loader, epochs: int) -> float:
    """Images/s over ``epochs`` passes, not counting the first batch (worker start-up)."""
    it = iter(loader)
    next(it)
    count, start = 0, time.perf_counter()
    for epoch in range(epochs):
        for x, _ in it:
            count += x.shape[0]
        if epoch + 1 < epochs:
            it = iter(loader)
    elapsed = time.perf_counter() - start
    return count / elapsed if count else float("nan")


def training_ips(device: torch.device, size: int, batch: int, repeats: int) -> float:
    """Main images/s of the co-training step (what a loader must keep up with)."""
    from steps import build_trainer, random_batch

    trainer = build_trainer(device)
    u8, labels = random_batch(batch, size, device)
    return batch / median(time_fn(lambda: trainer.cotrain(u8, labels), 1, repeats, device))


def run(args, work: Path, device: torch.device) -> dict[str, Any]:
    """All loader measurements in ``work`` (a temporary folder)."""
    t0 = time.perf_counter()
    write_jpegs(work / "jpeg", args.images)
    t1 = time.perf_counter()
    cached = open_cache(work / "jpeg", args.size, work / "cache")
    t2 = time.perf_counter()
    res: dict[str, Any] = {"images": args.images, "source_side": 100, "size": args.size,
                           "batch": args.batch, "cache_build_s": t2 - t1,
                           "jpeg_write_s": t1 - t0, "pil": {}, "cache": {}}
    for workers in args.workers:
        res["pil"][str(workers)] = images_per_s(
            pil_loader(work / "jpeg", args.size, args.batch, workers), args.epochs)
        res["cache"][str(workers)] = images_per_s(
            cache_loader(cached, args.size, args.batch, workers), args.epochs)
    labels = torch.from_numpy(np.asarray(cached.labels))
    batched = TensorBatchLoader(cached.tensor(), labels, args.batch,
                                padding=round(args.size * 0.125))
    res["cache_batched"] = images_per_s(batched, args.epochs)
    best_pil, best_cache = max(res["pil"].values()), max(res["cache"].values())
    res["best_pil_images_per_s"] = best_pil
    res["best_cache_images_per_s"] = best_cache
    res["cache_vs_pil"] = best_cache / best_pil
    res["batched_vs_pil"] = res["cache_batched"] / best_pil
    train = args.train_ips or training_ips(device, args.size, args.batch, 2 if args.smoke else 3)
    res["train_images_per_s"] = train
    res["train_ips_source"] = "--train-ips" if args.train_ips else "measured here"
    res["cache_vs_train"] = best_cache / train
    res["batched_vs_train"] = res["cache_batched"] / train
    return res


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--images", type=int, default=1024, help="JPEG files to generate")
    parser.add_argument("--epochs", type=int, default=2, help="passes timed per path")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-ips", type=float, default=None,
                        help="training main images/s measured elsewhere (else measured here)")
    args = parser.parse_args()
    device = setup(args)
    if args.smoke:
        args.size, args.batch, args.images, args.epochs, args.workers = 32, 8, 48, 1, [0]
    with tempfile.TemporaryDirectory(prefix="fermixnet-loader-") as tmp:
        results = run(args, Path(tmp), device)
    finish("loader", args, results, device)


if __name__ == "__main__":
    main()
