"""Write a `fer2013.csv` of FER2013's size from synthetic faces, to measure what
`fermixnet compare` costs on FER2013 without the licensed file (docs/training.md, "Compare on
your own data").

    PYTHONPATH=src python benchmarks/fer2013_sized.py OUT_DIR [--pool 2000]

The file has the release's header and code table and 28,709 Training, 3,589 PublicTest and 3,589
PrivateTest rows of 48x48 grayscale faces. A pool of synthetic faces (`synthetic_faces.faces`,
the project's generator; docs/synthetic.md) is drawn once and cycled: training and evaluation
cost depends on the number and size of the images, not on what they show.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fermixnet.data.fer2013_csv import EXPECTED
from fermixnet.labels import FER2013_TO_CANONICAL
from synthetic_faces import faces

USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder to write fer2013.csv into")
    p.add_argument("--pool", type=int, default=2000, help="distinct faces drawn (cycled)")
    args = p.parse_args()
    images, labels = faces(args.pool, 48, seed=0)
    gray = images.mean(axis=3).round().astype(np.uint8)  # (N, 48, 48)
    code_of = {canonical: code for code, canonical in FER2013_TO_CANONICAL.items()}
    pixels = [" ".join(map(str, g.ravel())) for g in gray]
    args.out.mkdir(parents=True, exist_ok=True)
    rows, i = ["emotion,pixels,Usage"], 0
    for split, usage in USAGE.items():
        for _ in range(EXPECTED[split]):
            k = i % args.pool
            rows.append(f"{code_of[int(labels[k])]},{pixels[k]},{usage}")
            i += 1
    (args.out / "fer2013.csv").write_text("\n".join(rows) + "\n")
    print(f"wrote {len(rows) - 1} rows to {args.out / 'fer2013.csv'}")


if __name__ == "__main__":
    main()
