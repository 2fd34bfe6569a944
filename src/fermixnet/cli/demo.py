"""`fermixnet demo` (the main job on the embedded synthetic data) and `fermixnet compare` (the
same comparison on any data)."""

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
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[],
                   metavar="KEY=VALUE",
                   help="config overrides applied to both recipes, e.g. train.cpu_threads=1")
    p.set_defaults(func=_run)
    _register_compare(subparsers)


def _register_compare(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="train ResNet-18 and FERMixNet on your data and compare them under occlusion",
        description="Write an occluded copy of each data set's test split (every face clean and "
        "once per occlusion type), train a plain ResNet-18 and FERMixNet with the same budget, "
        "select each on validation, evaluate both clean and per occluder and write the summary "
        "table, plot and report (mean and spread over seeds). Says how long it will take before "
        "it starts; run again after a kill, it reuses finished runs and resumes a half-done one.",
    )
    p.add_argument("--data", action="append", required=True, metavar="SPEC",
                   help="data set as NAME:ROOT[,key=value...], e.g. fer2013:/data/fer2013 "
                   "(repeatable: trained on together, each tested)")
    p.add_argument("--recipe", type=Path, default=None,
                   help="YAML recipe of FERMixNet, e.g. configs/rafdb_resnet18.yaml; the baseline "
                   "is it without mid branch and FERMix (default: the demo's from-scratch pair)")
    p.add_argument("--arms", nargs="+", default=None, metavar="ARM",
                   help="models to compare, the first the reference: presets of recipe overrides "
                   "(resnet18, fermixnet, resnet18-occluders, fermixnet-occluders, "
                   "fermixnet-landmarks, fermixnet-landmarks-occluders; default: resnet18 "
                   "fermixnet); arms with occluders are tested on the occluders none trained with")
    p.add_argument("--recipes", type=Path, nargs="+", default=None, metavar="YAML",
                   help="one recipe file per arm instead of --arms/--recipe (named by file name)")
    p.add_argument("--out", type=Path, default=Path("fermixnet_compare"), help="output folder")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seeds; several give mean ± std (default: 0)")
    p.add_argument("--size", type=int, default=None, help="input size in pixels (default: "
                   "the recipe's; the demo recipe's is 64)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of both models")
    p.add_argument("--batch", type=int, default=None, help="batch size of both models")
    p.add_argument("--occlusion-seed", type=int, default=0, help="seed of the occluders")
    p.add_argument("--quick", action="store_true", help="smoke-sized run (for tests)")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[],
                   metavar="KEY=VALUE", help="config overrides applied to both models, e.g. "
                   "train.device=cuda data.on_device=true")
    p.set_defaults(func=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    from fermixnet.demo.compare import CompareSettings, run_compare
    from fermixnet.run_layout import ReportLayout

    settings = CompareSettings(
        data=tuple(args.data), out=args.out, recipe=args.recipe, seeds=tuple(args.seeds),
        size=args.size, epochs=args.epochs, batch=args.batch, quick=args.quick,
        overrides=tuple(args.overrides), occlusion_seed=args.occlusion_seed,
        arms=tuple(args.arms) if args.arms else None,
        recipes=tuple(args.recipes) if args.recipes else None)
    summary = run_compare(settings, log=lambda line: print(line, flush=True))
    print()
    print(summary.read_text())
    print(f"report: {ReportLayout(summary.parent).markdown}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from fermixnet.demo import DemoSettings, run_demo
    from fermixnet.run_layout import ReportLayout

    given = {k: getattr(args, k) for k in ("size", "train", "val", "test") if getattr(args, k)}
    settings = DemoSettings(out=args.out, seeds=tuple(args.seeds), data_seed=args.data_seed,
                            epochs=args.epochs, quick=args.quick, overrides=tuple(args.overrides),
                            **given)
    result = run_demo(settings)
    print()
    print(ReportLayout(result.report.parent).summary_md.read_text())
    print(f"report: {result.report}")
    return 0
