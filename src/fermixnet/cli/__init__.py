"""`fermixnet` console script: maps subcommands to library functions.

Only this package reads argv. Each area registers its own subcommands in a module of this package
(`register(subparsers)`), so the dispatcher stays small and the areas stay apart.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fermixnet import __version__

# Modules of this package that define `register(subparsers)`; imported lazily so that `--help`
# and light commands do not pay for torch-heavy imports of other areas.
_AREAS: tuple[str, ...] = ("models", "train", "data", "demo", "inference", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fermixnet",
        description="Occlusion-robust facial expression recognition (FERMix + FERMixNet).",
    )
    parser.add_argument("--version", action="version", version=f"fermixnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for area in _AREAS:
        try:
            module = importlib.import_module(f"fermixnet.cli.{area}")
        except ModuleNotFoundError as err:
            if err.name == f"fermixnet.cli.{area}":
                continue  # area not installed in this build
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fermixnet` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as err:
        # User errors (bad input, a file missing or not readable): one clear line, no traceback.
        print(f"fermixnet {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fermixnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
