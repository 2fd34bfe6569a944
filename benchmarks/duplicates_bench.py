"""Duplicate-report benchmark: images/s of hashing decoded pixels (`data check`'s leakage report).

On generated files (smooth random images, so they decode like photos), for each size:

- ``hash_only``: `fingerprint` of arrays already in memory (BLAKE2b + the blank test);
- ``fingerprints``: `dataset_fingerprints` over the files (decode on a thread pool + hash), what
  `exclude_leaked=1` costs per image;
- ``check``: the whole `data check` of the split (decode for the stored mode and size, decode
  again as the model sees it, hash).

48x48 grayscale PNGs are FER2013's image-folder copy; 224x224 JPEGs stand for AffectNet-like
crops.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from common import base_parser, finish, setup
from fermixnet.data import create_dataset
from fermixnet.data.check import check_dataset
from fermixnet.data.duplicates import dataset_fingerprints, fingerprint

CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")


def write_images(root: Path, count: int, side: int, gray: bool) -> None:
    """``root/train/<class>/<i>.(png|jpg)``: smooth random images."""
    rng = np.random.default_rng(0)
    for i in range(count):
        low = rng.integers(0, 256, (6, 6) if gray else (6, 6, 3), dtype=np.uint8)
        image = Image.fromarray(low).resize((side, side), Image.Resampling.BICUBIC)
        folder = root / "train" / CLASSES[i % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / (f"{i:05d}.png" if gray else f"{i:05d}.jpg"))


def _rate(count: int, fn) -> float:
    start = time.perf_counter()
    fn()
    return round(count / (time.perf_counter() - start), 1)


def measure(count: int, side: int, gray: bool, workers: int) -> dict[str, Any]:
    """images/s of the three paths over `count` generated images of `side` pixels."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_images(root, count, side, gray)
        ds = create_dataset("folder", root, "train")
        arrays = [ds.load(i) for i in range(min(count, 2000))]
        return {
            "images": count, "side": side, "stored": "png gray" if gray else "jpeg rgb",
            "workers": workers,
            "hash_only": _rate(len(arrays), lambda: [fingerprint(a) for a in arrays]),
            "fingerprints": _rate(count, lambda: dataset_fingerprints(ds, workers)),
            "check": _rate(count, lambda: check_dataset("folder", str(root), None, ["train"],
                                                        workers)),
        }  # fmt: skip


def main() -> None:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20000, help="48 px images (default 20000)")
    parser.add_argument("--count-224", type=int, default=4000, help="224 px images")
    parser.add_argument("--workers", type=int, default=2, help="decoding threads")
    args = parser.parse_args()
    setup(args)
    small, large = (200, 50) if args.smoke else (args.count, args.count_224)
    results = {"48px": measure(small, 48, True, args.workers),
               "224px": measure(large, 224, False, args.workers)}  # fmt: skip
    finish("duplicates", args, results)


if __name__ == "__main__":
    main()
