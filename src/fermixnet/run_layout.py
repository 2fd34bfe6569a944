"""Where the files of a run, a report, a sweep and a comparison are: the one owner of their names.

Every module that writes or reads these folders (`fit`, `fermixnet eval`, the sweep, the report,
`compare` and the demo) asks a layout for the path, so that each file name is written once (house
style rule 11) and renaming one is a one-line change. A layout is a frozen dataclass over its root
folder; its properties are plain paths and nothing is created or read here, except where a method
says it lists what is on disk.

A run folder (`RunLayout`, written by `fit`; docs/training.md, "What a run folder holds")::

    RUN/config.yaml            the resolved recipe
        metrics.json           summary, status (running/stopped/complete) and history
        metrics.csv            one row per epoch
        data.json              what each data set's cache skipped, and why
        tensorboard/           TensorBoard events
        checkpoints/last/      the newest weights and training state (`engine/checkpoint.py`)
        checkpoints/best/      the best by validation, never by test
        eval/<test>-last.json  test results of `fit` with the last and the best weights;
        eval/<test>-best.json    `fermixnet eval --out RUN` writes `eval/<test>.json`
        plots/mix_samples.png  mixed training images (`report.plots.mix_samples_preview`)
        task.json              a sweep task's state (`engine/sweep_launch.py`)

The files inside a checkpoint folder are named by `models/contract.py` (weights, metadata) and
`engine/checkpoint.py` (training state).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["CHECKPOINTS", "ComparisonLayout", "ReportLayout", "RunLayout", "SweepLayout"]

CHECKPOINTS: tuple[str, ...] = ("last", "best")
"""The checkpoint folders of a run; `fit` also names its test results after them."""


@dataclass(frozen=True)
class _Layout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))


@dataclass(frozen=True)
class RunLayout(_Layout):
    """The files and folders of one run folder `root` (see the module docstring)."""

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics_json(self) -> Path:
        return self.root / "metrics.json"

    @property
    def metrics_csv(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def data_json(self) -> Path:
        return self.root / "data.json"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def checkpoints(self) -> Path:
        """The folder of the checkpoint folders (`engine/checkpoint.py` swaps them inside it)."""
        return self.root / "checkpoints"

    def checkpoint(self, name: str) -> Path:
        """The checkpoint folder `name` (`last` or `best`)."""
        if name not in CHECKPOINTS:
            raise ValueError(f"checkpoint name must be one of {CHECKPOINTS}, got {name!r}")
        return self.checkpoints / name

    @property
    def last(self) -> Path:
        return self.checkpoint("last")

    @property
    def best(self) -> Path:
        return self.checkpoint("best")

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    def eval_json(self, test: str, weights: str | None = None) -> Path:
        """Results on the test set `test`: `fit`'s with its `last` or `best` weights, or
        (`weights=None`) those of `fermixnet eval --out`."""
        if weights is None:
            return self.eval_dir / f"{test}.json"
        if weights not in CHECKPOINTS:
            raise ValueError(f"weights must be one of {CHECKPOINTS} or None, got {weights!r}")
        return self.eval_dir / f"{test}-{weights}.json"

    def eval_files(self) -> dict[tuple[str, str | None], Path]:
        """The result files on disk: (test set, `last` | `best` | None) -> path, by name."""
        found: dict[tuple[str, str | None], Path] = {}
        for f in sorted(self.eval_dir.glob("*.json")) if self.eval_dir.is_dir() else []:
            test, _, weights = f.stem.rpartition("-")
            found[(test, weights) if weights in CHECKPOINTS else (f.stem, None)] = f
        return found

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def mix_samples(self) -> Path:
        return self.plots / "mix_samples.png"

    @property
    def task(self) -> Path:
        """A sweep task's record (running, failed, requeued, done; `engine/sweep_launch.py`)."""
        return self.root / "task.json"


@dataclass(frozen=True)
class ReportLayout(_Layout):
    """A report folder (`fermixnet report`; for one run, the run folder itself)."""

    @property
    def markdown(self) -> Path:
        return self.root / "report.md"

    @property
    def csv(self) -> Path:
        return self.root / "report.csv"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def plot(self, name: str) -> Path:
        """The PNG `name` (without suffix) in `plots/`."""
        return self.plots / f"{name}.png"

    @property
    def summary_md(self) -> Path:
        """`compare`'s and the demo's summary beside the report."""
        return self.root / "summary.md"

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"


@dataclass(frozen=True)
class SweepLayout(_Layout):
    """A sweep folder: `<config name>/seed<k>/` run folders, the plan, the summary."""

    @property
    def plan(self) -> Path:
        """The planned run folders (`sweep --status` names those not yet started)."""
        return self.root / "sweep.json"

    @property
    def summary_md(self) -> Path:
        return self.root / "summary.md"

    @property
    def summary_csv(self) -> Path:
        return self.root / "summary.csv"

    @property
    def submitit(self) -> Path:
        """submitit's job files and logs."""
        return self.root / ".submitit"

    @staticmethod
    def run_name(config: str, seed: int) -> str:
        """The run folder of (config name, seed), relative to the sweep folder."""
        return f"{config}/seed{seed}"

    def run(self, config: str, seed: int) -> RunLayout:
        return RunLayout(self.root / self.run_name(config, seed))

    def runs_on_disk(self) -> list[RunLayout]:
        """Run folders present (sorted), whether planned or not."""
        return [RunLayout(p) for p in sorted(self.root.glob("*/seed*")) if p.is_dir()]


@dataclass(frozen=True)
class ComparisonLayout(_Layout):
    """The folder of `fermixnet compare` and `fermixnet demo`."""

    @property
    def data(self) -> Path:
        """Occluded test copies (and the demo's synthetic data set)."""
        return self.root / "data"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def run(self, seed: int, model: str) -> RunLayout:
        """The run folder of one model (its folder name, e.g. `fermixnet`) and seed."""
        return RunLayout(self.root / "runs" / f"seed{seed}" / model)

    @property
    def report(self) -> ReportLayout:
        return ReportLayout(self.root / "report")
