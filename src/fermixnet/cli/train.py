"""Subcommands `train`, `eval`, `report` and `sweep` (argv parsing only; the work is in
`fermixnet.engine` and `fermixnet.report`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", nargs="+", action="extend",
                   default=[], help="override config values, e.g. --set train.epochs=10 "
                   "mix.p_mix=0.5 (values are YAML)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `train`, `eval`, `report` and `sweep` to the `fermixnet` parser."""
    p = sub.add_parser("train", help="train a recipe (YAML config) into a run folder",
                       description="Train a recipe. Under torchrun the same command uses "
                       "DistributedDataParallel.")
    p.add_argument("--config", type=Path, help="YAML recipe (see configs/)")
    p.add_argument("--out", type=Path, help="run folder to create")
    p.add_argument("--resume", type=Path, metavar="RUN",
                   help="continue the run in RUN (its config.yaml; --set may still override)")
    _add_set(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on data sets and their subsets")
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="checkpoint folder, model.safetensors, or run folder (uses its best)")
    p.add_argument("--data", nargs="+", action="extend", required=True, metavar="SPEC",
                   help="name:root[,split=test,key=value] (repeatable)")
    p.add_argument("--out", type=Path, help="write OUT/eval/<data set>.json")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cache-dir", type=Path)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("report", help="markdown report, plots and CSV of one or more runs")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN")
    p.add_argument("--out", type=Path, help="output folder (default: the run, or ./report)")
    p.add_argument("--names", nargs="+", help="column label of each run")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("sweep", help="run configs x seeds and tabulate mean and spread")
    p.add_argument("--configs", nargs="+", type=Path, required=True)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--out", type=Path, required=True)
    _add_set(p)
    p.set_defaults(func=cmd_sweep)


def cmd_train(args: argparse.Namespace) -> int:
    """`fermixnet train --config C --out RUN [--set k=v ...]` or `--resume RUN`."""
    from fermixnet.config import load_config
    from fermixnet.engine import TrainingDivergedError, fit
    from fermixnet.report.plots import mix_samples_preview

    if args.resume is not None:
        if args.config is not None or (args.out is not None and args.out != args.resume):
            raise ValueError("--resume RUN takes the config from RUN/config.yaml; drop --config "
                             "and --out")
        cfg = load_config(args.resume / "config.yaml", args.overrides)
        out, resume = args.resume, True
    else:
        if args.config is None or args.out is None:
            raise ValueError("train needs --config FILE and --out RUN (or --resume RUN)")
        cfg, out, resume = load_config(args.config, args.overrides), args.out, False
    try:
        result = fit(cfg, out, resume=resume, preview=mix_samples_preview)
    except TrainingDivergedError as err:
        print(f"fermixnet train: {err}; the last good checkpoint is {out}/checkpoints/last "
              f"(lower optim.lr and continue with --resume {out})", file=sys.stderr)
        return 3
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun only rank 0 reports
    if result.best_epoch is not None:
        print(f"best validation {cfg.eval.select} {result.best_val:.4f} at epoch "
              f"{result.best_epoch}")
    for name, res in result.test.items():
        last, best = res["last"].accuracy(), res["best"].accuracy()
        print(f"test {name}: accuracy last epoch {last:.4f}, best-by-validation {best:.4f}")
    print(f"run folder: {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """`fermixnet eval --checkpoint CK --data SPEC... [--out DIR]`."""
    from fermixnet.engine.eval_run import evaluate_checkpoint, format_results

    results = evaluate_checkpoint(args.checkpoint, args.data, out_dir=args.out,
                                  device=args.device, batch_size=args.batch_size,
                                  workers=args.workers, cache_dir=args.cache_dir)
    print(format_results(results))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """`fermixnet report RUN... [--out DIR] [--names ...]`."""
    from fermixnet.report import write_report

    out = args.out or (args.runs[0] if len(args.runs) == 1 else Path("report"))
    print(write_report(args.runs, out, names=args.names))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """`fermixnet sweep --configs C... --seeds S... --out DIR [--set k=v ...]`."""
    from functools import partial

    from fermixnet.engine import fit
    from fermixnet.engine.sweep import sweep
    from fermixnet.report.plots import mix_samples_preview

    runner = partial(fit, preview=mix_samples_preview)
    print(sweep(args.configs, args.seeds, args.out, args.overrides, runner=runner))
    return 0
