"""`fermixnet data ...`: check a data folder, pre-build its cache, list the adapters.

    fermixnet data check --data rafdb:/data/RAF-DB [--split test] [--json] [--skip-bad]
    fermixnet data cache --data rafdb:/data/RAF-DB --split train --size 224
    fermixnet data list

The synthetic-data commands (`data synth`, `data occlude`) are added by `fermixnet.cli.synth`
when that module is present.
"""

from __future__ import annotations

import argparse
import importlib
import json

_SPEC_HELP = "data set as NAME:ROOT[,key=value...], e.g. rafdb:/data/RAF-DB (repeatable)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` command group to the top-level parser."""
    parser = subparsers.add_parser(
        "data", help="check and prepare data sets", description=__doc__.split("\n\n")[0]
    )
    data_subparsers = parser.add_subparsers(
        dest="data_command", metavar="SUBCOMMAND", required=True
    )

    check = data_subparsers.add_parser("check", help="count, decode and validate a data set")
    check.add_argument("--data", action="append", required=True, metavar="SPEC", help=_SPEC_HELP)
    check.add_argument("--split", action="append", help="split to check (repeatable)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--skip-bad", action="store_true",
                       help="skip bad list lines / missing / undecodable images (counted)")
    check.add_argument("--workers", type=int, default=None, help="decoding threads")
    check.set_defaults(func=run_check)

    cache = data_subparsers.add_parser("cache", help="decode a split once into the uint8 cache")
    cache.add_argument("--data", action="append", required=True, metavar="SPEC", help=_SPEC_HELP)
    cache.add_argument("--split", default="train", help="split to cache (default train)")
    cache.add_argument("--size", type=int, nargs="+", default=[224], help="H [W] (default 224)")
    cache.add_argument("--cache-dir", default=None, help="default $FERMIXNET_CACHE or ~/.cache")
    cache.add_argument("--workers", type=int, default=None, help="decoding threads")
    cache.add_argument("--skip-bad", action="store_true",
                       help="skip bad list lines / missing / undecodable images (counted)")
    cache.set_defaults(func=run_cache)

    listing = data_subparsers.add_parser("list", help="list the data set adapters")
    listing.set_defaults(func=run_list)

    try:
        synth = importlib.import_module("fermixnet.cli.synth")
    except ModuleNotFoundError as err:
        if err.name != "fermixnet.cli.synth":
            raise
        synth = None
    if synth:
        synth.register(data_subparsers)


def run_check(args: argparse.Namespace) -> int:
    """`data check`: 0 when every split reads and decodes, 1 otherwise."""
    from fermixnet.data.check import check_dataset, format_check
    from fermixnet.data.registry import parse_data_spec

    results = []
    for spec in args.data:
        name, root, options = parse_data_spec(spec)
        if args.skip_bad:
            options["skip_bad"] = "1"
        results.append(check_dataset(name, root, options, args.split, args.workers,
                                     detectors=_landmark_detector))
    if args.json:
        payload = [r.to_dict() for r in results]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
    else:
        print("\n".join(format_check(r) for r in results))
    return 0 if all(r.ok for r in results) else 1


def run_cache(args: argparse.Namespace) -> int:
    """`data cache`: build (or find) the cache of one split and print where it is."""
    from fermixnet.data.cache import build_cache
    from fermixnet.data.joint import open_datasets

    if len(args.size) not in (1, 2):
        raise ValueError(f"--size takes H or H W, got {args.size}")
    size = (args.size[0], args.size[-1])
    specs = [s + (",skip_bad=1" if args.skip_bad else "") for s in args.data]
    dataset = open_datasets(specs, args.split)
    cached = build_cache(
        dataset, size, args.cache_dir, workers=args.workers,
        on_error="skip" if args.skip_bad else None, progress=True, detectors=_landmark_detector,
    )  # fmt: skip
    record = cached.skip_record()
    total = sum(record["skipped"].values())
    print(f"{cached.path}: {len(cached)} images {size[0]}x{size[1]}, {total} skipped")
    for reason, count in sorted(record["skipped"].items()):
        print(f"  skipped: {count} {reason}")
    print("  landmarks: " + ", ".join(f"{k} {v}" for k, v in record["landmarks"].items()))
    if record.get("landmark_misses"):
        print(f"  landmark detection found no usable face in {record['landmark_misses']} "
              "images (the template is used):")
        print("\n".join(f"    {line}" for line in record["undetected_landmarks"]))
    return 0


def _landmark_detector(name: str):
    """A spec's `detect_landmarks=` detector (`fermixnet.inference.faces.landmark_detector`),
    imported only when a spec asks for one."""
    from fermixnet.inference.faces import landmark_detector

    return landmark_detector(name)


def run_list(args: argparse.Namespace) -> int:
    """`data list`: the registered adapter names."""
    from fermixnet.data import list_datasets

    print("\n".join(list_datasets()))
    return 0
