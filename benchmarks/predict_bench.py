"""End-to-end prediction benchmark: photos/s through reading, detection, alignment, classification.

Scenes are generated here: a 512x512 smooth random background with one synthetic face
(`fermixnet.synth.generate`, 160 px) pasted at a random place, written as JPEG files. The
`fermixnet.inference.Predictor` of a saved checkpoint (ResNet-18 FERMixNet, 112 px, random
weights: speed does not depend on them) reads them with ``predict_files`` (faces of a chunk are
classified in shared batches) and the default detector (``auto``; ``aligned`` when no detector
package is installed, which the results say). How many faces the detector found is reported, since
a missed face skips alignment and classification.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from common import base_parser, finish, setup


def write_scenes(
    folder: Path, count: int, side: int = 512, face: int = 160, seed: int = 0
) -> list[Path]:
    """``count`` JPEG scenes with one synthetic face each; returns their paths."""
    from fermixnet.synth.generate import SynthConfig, render_sample

    cfg = SynthConfig()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        low = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        scene = np.array(Image.fromarray(low).resize((side, side), Image.Resampling.BILINEAR))
        x, y = rng.integers(0, side - face, 2)
        scene[y : y + face, x : x + face] = render_sample(seed, "test", i, face, cfg)[0]
        paths.append(folder / f"scene_{i:04d}.jpg")
        Image.fromarray(scene).save(paths[-1], quality=90)
    return paths


def build_predictor(folder: Path, size: int, detector: str = "auto", batch_size: int = 32):
    """A Predictor over a freshly saved checkpoint; returns ``(predictor, detector name)``."""
    from fermixnet.inference import Predictor
    from fermixnet.inference.faces import create_detector
    from fermixnet.models import create_model
    from fermixnet.models.weights import save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(create_model("resnet18", 7, mid_branch=True).eval(), folder,
                    {"input_size": size})
    try:
        det = create_detector(detector)
        name = type(det).__name__ if detector == "auto" else detector
    except ValueError:  # no detector package: the pipeline still runs, minus detection
        det, name = create_detector("aligned"), "aligned (no detector installed)"
    return Predictor.from_checkpoint(folder, detector=det, batch_size=batch_size), name


def run(args, work: Path) -> dict[str, Any]:
    """Time ``predict_files`` over the generated scenes (after one warm-up chunk)."""
    paths = write_scenes(work / "scenes", args.photos, side=args.side, face=args.face)
    predictor, detector = build_predictor(work / "ckpt", args.size)
    list(predictor.predict_files(paths[: args.chunk], chunk=args.chunk))  # warm-up
    start = time.perf_counter()
    results = list(predictor.predict_files(paths, chunk=args.chunk))
    elapsed = time.perf_counter() - start
    found = sum(len(r.faces) for r in results)
    return {
        "photos": len(paths),
        "photo_side": args.side,
        "face_side": args.face,
        "model_size": args.size,
        "detector": detector,
        "faces_found": found,
        "photos_with_a_face": sum(1 for r in results if r.faces),
        "elapsed_s": elapsed,
        "photos_per_s": len(paths) / elapsed,
        "ms_per_photo": elapsed / len(paths) * 1e3,
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--face", type=int, default=160)
    parser.add_argument("--size", type=int, default=112, help="model input size")
    parser.add_argument("--chunk", type=int, default=16, help="photos per predict_files chunk")
    args = parser.parse_args()
    setup(args)
    if args.smoke:
        args.photos, args.side, args.face, args.size, args.chunk = 4, 256, 96, 48, 2
    with tempfile.TemporaryDirectory(prefix="fermixnet-predict-") as tmp:
        results = run(args, Path(tmp))
    finish("predict", args, results)


if __name__ == "__main__":
    main()
