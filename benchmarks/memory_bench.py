"""Peak memory (resident set) of training and of prediction, each in a fresh process.

Each measurement runs in its own subprocess (``--child``) and reads ``ru_maxrss`` at the end, so
the numbers are peaks of exactly that work plus the interpreter, torch and fermixnet, which the
``baseline`` child (imports only) shows separately.

- ``train``: FERMix co-training steps at ``--size`` with ``--batch`` main images (so 2x batch
  images through the model), ResNet-18 FERMixNet, SGD, channels_last.
- ``predict``: `predict_bench`'s pipeline (checkpoint, detector, Predictor) over 16 scenes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from common import base_parser, finish, peak_rss_mib, setup


def child_train(args) -> dict[str, Any]:
    """A few co-training steps; the peak is reached in the first backward."""
    from steps import build_trainer, random_batch

    device = torch.device(args.device)
    trainer = build_trainer(device)
    u8, labels = random_batch(args.batch, args.size, device)
    for _ in range(args.steps):
        trainer.cotrain(u8, labels)
    out: dict[str, Any] = {"size": args.size, "batch_main": args.batch, "steps": args.steps}
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def child_predict(args) -> dict[str, Any]:
    """Predict 16 scenes (two chunks of 8)."""
    from predict_bench import build_predictor, write_scenes

    with tempfile.TemporaryDirectory(prefix="fermixnet-mem-") as tmp:
        paths = write_scenes(Path(tmp) / "scenes", 4 if args.smoke else 16)
        predictor, detector = build_predictor(Path(tmp) / "ckpt", args.size)
        list(predictor.predict_files(paths, chunk=8))
    return {"size": args.size, "detector": detector, "photos": len(paths)}


def child_baseline(args) -> dict[str, Any]:
    """Imports only: what every process pays before doing anything."""
    import fermixnet.models  # noqa: F401

    return {}


CHILDREN = {"train": child_train, "predict": child_predict, "baseline": child_baseline}


def measure(kind: str, args) -> dict[str, Any]:
    """Run one child process and return its JSON line (with ``peak_rss_mib``)."""
    cmd = [sys.executable, __file__, "--child", kind, "--size", str(args.size),
           "--batch", str(args.batch), "--steps", str(args.steps), "--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.smoke:
        cmd.append("--smoke")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-800:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--child", choices=sorted(CHILDREN), default=None, help=argparse_hidden())
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=64, help="main images per training step")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    setup(args)
    if args.child is not None:
        result = CHILDREN[args.child](args)
        result["peak_rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return
    if args.smoke:
        args.size, args.batch, args.steps = 32, 4, 1
    results = {kind: measure(kind, args) for kind in ("baseline", "train", "predict")}
    finish("memory", args, results, torch.device(args.device))


def argparse_hidden() -> str:
    """Help text of the internal ``--child`` option."""
    return "internal: run one measurement in this process and print it as JSON"


if __name__ == "__main__":
    main()
