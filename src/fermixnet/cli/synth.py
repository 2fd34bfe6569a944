"""`fermixnet data synth` and `fermixnet data occlude`: synthetic faces and synthetic occlusion.

`cli/data.py` calls `register(data_subparsers)` to add both commands to the `data` group.
"""

from __future__ import annotations

import argparse
import time

from fermixnet.synth.generate import DEFAULT_COUNTS


def _float_pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI (two numbers), got {text!r}") from None
    return lo, hi


def register(data_subparsers: argparse._SubParsersAction) -> None:
    """Add ``synth`` and ``occlude`` to the ``data`` command group."""
    _add_synth(data_subparsers)
    _add_occlude(data_subparsers)


def _add_synth(data_subparsers: argparse._SubParsersAction) -> None:
    p = data_subparsers.add_parser(
        "synth",
        help="generate the synthetic FACS-based expression data set",
        description="Draw synthetic colour faces whose expressions come from FACS action units, "
        "and write them as a manifest data set (manifest.csv + images/<split>/<class>/).",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="master seed (same seed: same files)")
    p.add_argument("--size", type=int, default=96, help="image side in pixels (default 96)")
    for split, n in DEFAULT_COUNTS.items():
        p.add_argument(f"--{split}", type=int, default=n, help=f"{split} images (default {n})")
    p.add_argument("--classes", type=int, default=7, choices=(7, 8), help="7 or 8 (+contempt)")
    p.add_argument("--preset", default="aligned", choices=("aligned", "unaligned"),
                   help="aligned (default: nearly upright, centred faces) or unaligned (framed "
                   "like detector boxes: roll up to 30 degrees, shifts up to 15 %% of the side, "
                   "scale 0.75-1.15; docs/synthetic.md)")
    p.add_argument("--workers", type=int, default=1, help="drawing processes (default 1)")
    p.add_argument(
        "--intensity",
        type=_float_pair,
        default=None,
        metavar="LO,HI",
        help="range of expression intensity (difficulty; default 0.5,1.0)",
    )
    p.add_argument(
        "--blend-prob",
        type=float,
        default=None,
        help="probability of blending a second expression (default 0.2)",
    )
    p.set_defaults(func=run_synth)


def _add_occlude(data_subparsers: argparse._SubParsersAction) -> None:
    q = data_subparsers.add_parser(
        "occlude",
        help="draw realistic occluders onto a data set's images",
        description="Write occluded copies of a data set (any adapter) as a manifest data set, "
        "recording the occlusion type and occluder of each image.",
    )
    q.add_argument("--data", required=True, help="source data set, name:root[,key=value]")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument(
        "--types",
        default="all",
        help="comma list of upper,lower,left,right,corner,object (default all)",
    )
    q.add_argument("--seed", type=int, default=0, help="master seed")
    q.add_argument("--occluders", default=None, metavar="NAMES",
                   help="comma list of the only occluders to draw, e.g. sunglasses,scarf,phone "
                   "(those a model did not train with; types without any are left out)")
    q.add_argument("--splits", default="test", help="comma list of splits (default test)")
    q.add_argument(
        "--random-type",
        action="store_true",
        help="one random type per image instead of one copy per type",
    )
    q.add_argument(
        "--no-clean",
        action="store_true",
        help="do not also write the unoccluded images (occlusion=none)",
    )
    q.set_defaults(func=run_occlude)


def run_synth(args: argparse.Namespace) -> int:
    """Handler of ``data synth``."""
    from fermixnet.synth.faces import synth_preset
    from fermixnet.synth.generate import generate_synthetic

    overrides = {"num_classes": args.classes}
    if args.intensity is not None:
        overrides["intensity"] = args.intensity
    if args.blend_prob is not None:
        overrides["blend_prob"] = args.blend_prob
    counts = {split: getattr(args, split) for split in DEFAULT_COUNTS}
    start = time.perf_counter()
    manifest = generate_synthetic(
        args.out,
        seed=args.seed,
        size=args.size,
        counts=counts,
        config=synth_preset(args.preset, **overrides),
        workers=args.workers,
    )
    n, dt = sum(counts.values()), time.perf_counter() - start
    print(f"wrote {n} images to {manifest} in {dt:.1f} s ({n / max(dt, 1e-9):.0f} images/s)")
    return 0


def run_occlude(args: argparse.Namespace) -> int:
    """Handler of ``data occlude``."""
    from fermixnet.synth.occlude import occlude_dataset, parse_types

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    manifest = occlude_dataset(
        args.data,
        args.out,
        types=parse_types(args.types),
        seed=args.seed,
        splits=splits,
        random_type=args.random_type,
        keep_clean=not args.no_clean,
        occluders=None if args.occluders is None
        else tuple(n.strip() for n in args.occluders.split(",") if n.strip()),
    )
    print(f"wrote occluded data set {manifest}")
    return 0
