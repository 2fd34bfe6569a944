"""`fermixnet demo`: the main job on the embedded synthetic data."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="draw synthetic faces, train ResNet-18 and FERMixNet, compare them under occlusion",
        description="Generate the synthetic FACS data set and its occluded test copy, train a "
        "plain "
        "ResNet-18 and FERMixNet with the same budget, evaluate both on clean and occluded faces, "
        "write the report and print the comparison. Reruns reuse finished data and runs.",
    )
    p.add_argument("--out", type=Path, default=Path("fermixnet_demo"), help="output folder")
    p.add_argument("--quick", action="store_true", help="smoke-sized run (seconds; for tests)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seeds; several give mean ± std (default: 0)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data")
    p.add_argument("--size", type=int, default=None, help="image size in pixels (default 64)")
    for split, n in (("train", 2800), ("val", 350), ("test", 700)):
        p.add_argument(f"--{split}", type=int, default=None, help=f"{split} images (default {n})")
    p.add_argument("--epochs", type=int, default=None, help="epochs of both models")
    p.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                   help="config overrides applied to both recipes, e.g. train.cpu_threads=1")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from fermixnet.demo import DemoSettings, run_demo

    given = {k: getattr(args, k) for k in ("size", "train", "val", "test") if getattr(args, k)}
    settings = DemoSettings(out=args.out, seeds=tuple(args.seeds), data_seed=args.data_seed,
                            epochs=args.epochs, quick=args.quick, overrides=tuple(args.overrides),
                            **given)
    result = run_demo(settings)
    print()
    print((result.report.parent / "summary.md").read_text())
    print(f"report: {result.report}")
    return 0
