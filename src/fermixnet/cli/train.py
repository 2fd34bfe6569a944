"""Subcommands `train`, `eval`, `report` and `sweep` (argv parsing only; the work is in
`fermixnet.engine` and `fermixnet.report`)."""

from __future__ import annotations

import argparse
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

    p = sub.add_parser("sweep", help="run configs x seeds and tabulate mean and spread",
                       description="Run every config with every seed into OUT/<config>/seed<k>/ "
                       "and tabulate mean and spread. Finished runs are skipped and interrupted "
                       "ones resumed, so the same command can be started again after a kill.")
    p.add_argument("--configs", nargs="+", type=Path)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--status", action="store_true",
                   help="say which runs of OUT are done, running, stopped, failed or pending, "
                   "and tabulate what is done (runs nothing)")
    p.add_argument("--launcher", choices=("local", "slurm", "submitit-local"), default="local",
                   help="local: one run after another in this process; slurm: one array job "
                   "via submitit (extra `cluster`); submitit-local: the same submission path "
                   "as subprocesses on this machine (default: local)")
    _add_set(p)
    _add_slurm_options(p)
    p.set_defaults(func=cmd_sweep)


def _add_slurm_options(p: argparse.ArgumentParser) -> None:
    # Defaults live in `SlurmOptions` (imported only when used: `--help` stays torch-free).
    g = p.add_argument_group("slurm launcher (one array task per run; defaults: docs/training.md)")
    g.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    g.add_argument("--time", help="time limit per task: minutes, HH:MM:SS or D-HH:MM:SS")
    g.add_argument("--gpus-per-task", type=int)
    g.add_argument("--cpus-per-task", type=int)
    g.add_argument("--mem-gb", type=float, help="memory per task (default: the partition's)")
    g.add_argument("--parallelism", type=int, help="tasks running at once")
    g.add_argument("--slurm-option", dest="slurm_options", metavar="KEY=VALUE", nargs="+",
                   action="extend", default=[], help="further sbatch options, e.g. account=lab")


def cmd_train(args: argparse.Namespace) -> int:
    """`fermixnet train --config C --out RUN [--set k=v ...]` or `--resume RUN`."""
    from fermixnet.config import load_config
    from fermixnet.engine import TrainingDivergedError, TrainingStopped, fit
    from fermixnet.engine.distributed import process_rank
    from fermixnet.engine.preemption import EXIT_STOPPED
    from fermixnet.report.plots import mix_samples_preview
    from fermixnet.run_layout import RunLayout

    if args.resume is not None:
        if args.config is not None or (args.out is not None and args.out != args.resume):
            raise ValueError("--resume RUN takes the config from RUN/config.yaml; drop --config "
                             "and --out")
        cfg = load_config(RunLayout(args.resume).config, args.overrides)
        out, resume = args.resume, True
    else:
        if args.config is None or args.out is None:
            raise ValueError("train needs --config FILE and --out RUN (or --resume RUN)")
        cfg, out, resume = load_config(args.config, args.overrides), args.out, False
    try:
        result = fit(cfg, out, resume=resume, preview=mix_samples_preview)
    except TrainingDivergedError as err:
        print(f"fermixnet train: {err}; the last good checkpoint is {RunLayout(out).last} "
              f"(lower optim.lr and continue with --resume {out})", file=sys.stderr)
        return 3
    except TrainingStopped:  # `fit` said where it stopped
        if process_rank() == 0:
            print(f"fermixnet train: continue with --resume {out}", file=sys.stderr)
        return EXIT_STOPPED
    if process_rank() != 0:
        return 0  # under torchrun or srun only rank 0 reports
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


def _slurm_options(args: argparse.Namespace):
    from fermixnet.engine.sweep_launch import SlurmOptions, parse_time

    extra = {}
    for item in args.slurm_options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--slurm-option {item!r}: expected KEY=VALUE, e.g. account=lab")
        extra[key.strip().lstrip("-")] = value
    given = dict(partition=args.partition, gpus_per_task=args.gpus_per_task,
                 cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb,
                 parallelism=args.parallelism,
                 time_min=None if args.time is None else parse_time(args.time))
    return SlurmOptions(**{k: v for k, v in given.items() if v is not None}, extra=extra)


def _print_status(out: Path) -> bool:
    """Print the runs' states and the summary of the done ones; True when all are done."""
    from fermixnet.engine.sweep import write_summary
    from fermixnet.engine.sweep_status import format_status, sweep_status

    infos = sweep_status(out)
    print(format_status(infos))
    md = write_summary(out)
    print(md.read_text(encoding="utf-8"), end="")
    print(f"summary: {md}")
    return all(i.state == "done" for i in infos)


def cmd_sweep(args: argparse.Namespace) -> int:
    """`fermixnet sweep --configs C... --seeds S... --out DIR [--launcher L] [--set k=v ...]`,
    or `fermixnet sweep --status --out DIR`."""
    from functools import partial

    from fermixnet.engine import TrainingStopped, fit
    from fermixnet.engine.preemption import EXIT_STOPPED
    from fermixnet.engine.sweep import submit_sweep, sweep
    from fermixnet.report.plots import mix_samples_preview

    if args.status:
        return 0 if _print_status(args.out) else 1
    runner = partial(fit, preview=mix_samples_preview)
    if not args.configs:
        raise ValueError("sweep needs --configs FILE... (or --status to look at --out)")
    if args.launcher == "local":
        try:
            print(sweep(args.configs, args.seeds, args.out, args.overrides, runner=runner))
        except TrainingStopped:  # `fit` said where it stopped
            print("fermixnet sweep: stopped; the same command resumes the sweep", file=sys.stderr)
            return EXIT_STOPPED
        return 0
    cluster = "slurm" if args.launcher == "slurm" else "local"
    jobs = submit_sweep(args.configs, args.seeds, args.out, args.overrides, cluster=cluster,
                        options=_slurm_options(args), runner=runner)
    if cluster == "slurm":
        if jobs:
            print(f"submitted array job {jobs[0].job_id.split('_')[0]} with {len(jobs)} tasks; "
                  f"follow it with: fermixnet sweep --status --out {args.out}")
        else:
            print(f"nothing to submit; see fermixnet sweep --status --out {args.out}")
        return 0
    return 0 if _print_status(args.out) else 1
