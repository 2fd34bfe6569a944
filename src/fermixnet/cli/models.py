"""`fermixnet info`: list the models and print their size (Table 1's parameters and MACs)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `info` subcommand."""
    p = subparsers.add_parser(
        "info",
        help="list models, or print a model's parameters and MACs",
        description="Print the parameter count and multiply-accumulates of a model "
        "(the convention of the paper's Table 1), or list the model names.",
    )
    p.add_argument("--list", action="store_true", help="list the model names and exit")
    p.add_argument("--model", default="resnet18", help="model name (default: resnet18)")
    p.add_argument("--num-classes", type=int, default=7, help="number of classes (default: 7)")
    p.add_argument("--no-mid", action="store_true", help="without the mid-level branch")
    p.add_argument("--input-size", type=int, default=224, help="square input side in pixels "
                   "(default: 224)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    """Prints the model list or one model's params/MACs; returns the exit status."""
    from fermixnet.models import create_model, list_models
    from fermixnet.models.complexity import count_macs, count_params, format_count

    if args.list:
        print("\n".join(list_models()))
        return 0
    if args.input_size <= 0:
        raise ValueError(f"--input-size must be positive, got {args.input_size}")
    model = create_model(args.model, num_classes=args.num_classes, mid_branch=not args.no_mid)
    info = {
        "model": args.model,
        "num_classes": args.num_classes,
        "mid_branch": not args.no_mid,
        "input_size": args.input_size,
        "params": count_params(model),
        "macs": count_macs(model, args.input_size),
    }
    if args.json:
        print(json.dumps(info))
        return 0
    info_text = {
        **info,
        "params": f"{format_count(info['params'], 'M')} ({info['params']:,})",
        "macs": f"{format_count(info['macs'], 'G')} ({info['macs']:,})",
    }
    for key, value in info_text.items():
        print(f"{key:<12} {value}")
    return 0
