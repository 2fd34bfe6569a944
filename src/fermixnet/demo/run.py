"""The main job on the embedded data: `fermixnet demo`.

Draws the synthetic FACS data set, makes an occluded copy of its test split (one copy per
occlusion type, the same faces each time), trains a plain ResNet-18 and FERMixNet with the same
data, seed, schedule and epochs (Table 1's first and last rows), evaluates both on the clean and the
occluded faces (Table 2's structure), writes the report and prints the comparison.

Everything is measured on synthetic data on the machine it runs on; nothing here is a paper number.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fermixnet.demo.summary import (
    DemoRow,
    format_summary,
    format_table,
    plot_demo,
    row_from_eval,
    spread_rows,
    target_checks,
)
from fermixnet.fileio import atomic_write
from fermixnet.framing import Framing

RECIPES = Path(__file__).parent / "recipes"
MODELS: tuple[tuple[str, str], ...] = (("ResNet-18", "resnet18"), ("FERMixNet", "fermixnet"))


@dataclass
class DemoSettings:
    """What `fermixnet demo` runs; the defaults are the README's main job.

    Attributes:
        out: output folder (data, cache, runs, report).
        seeds: training seeds; one run pair per seed (the data set is the same for all).
        data_seed: seed of the synthetic data and of the occluders.
        size: image side in pixels (the models' input size).
        train, val, test: images per split of the synthetic data set.
        epochs: training epochs of both models (None: the recipes' value).
        quick: a smoke-sized run (tiny data, 1 epoch) for tests.
        overrides: extra `key=value` config overrides applied to both recipes.
    """

    out: Path = Path("fermixnet_demo")
    seeds: Sequence[int] = (0,)
    data_seed: int = 0
    size: int = 64
    train: int = 2800
    val: int = 350
    test: int = 700
    epochs: int | None = None
    quick: bool = False
    overrides: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.quick:
            self.train, self.val, self.test, self.size = 112, 28, 28, 32
            self.epochs = 1 if self.epochs is None else self.epochs
        for key in ("train", "val", "test"):
            if getattr(self, key) < 7:
                raise ValueError(f"--{key} must be at least 7 (one image per class), "
                                 f"got {getattr(self, key)}")
        if self.size < 32:
            raise ValueError(f"--size must be at least 32 pixels, got {self.size}")
        if not self.seeds:
            raise ValueError("--seeds needs at least one seed")


@dataclass
class DemoResult:
    """Rows of the comparison table (one per model and seed), timings and the report path."""

    rows: list[DemoRow]
    timings: dict[str, float]
    report: Path
    checkpoint: Path


def make_data(s: DemoSettings, log: Callable[[str], None]) -> tuple[Path, Path]:
    """Draw the synthetic set and its occluded test copy, unless they are already there."""
    from fermixnet.synth.generate import generate_synthetic
    from fermixnet.synth.occlude import occlude_dataset

    clean, occluded = s.out / "data" / "synthetic", s.out / "data" / "synthetic_occluded"
    stamp = {"seed": s.data_seed, "size": s.size, "train": s.train, "val": s.val, "test": s.test}
    stamp_file = s.out / "data" / "settings.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
        log(f"data: reusing {clean} and {occluded}")
        return clean, occluded
    log(f"data: drawing {s.train}/{s.val}/{s.test} synthetic faces at {s.size} px into {clean}")
    generate_synthetic(clean, seed=s.data_seed, size=s.size,
                       counts={"train": s.train, "val": s.val, "test": s.test}, workers=2)
    log(f"data: occluding the test split (each face once per occlusion type) into {occluded}")
    occlude_dataset(f"manifest:{clean}", occluded, seed=s.data_seed + 1, splits=("test",))
    stamp_file.write_text(json.dumps(stamp))
    return clean, occluded


def recipe(model: str, s: DemoSettings, seed: int, clean: Path, occluded: Path):
    """The demo recipe of `model` with this run's data, seed and size filled in."""
    from fermixnet.config import load_config

    overrides = [
        f"data.train=[manifest:{clean}]",
        f"data.val=[manifest:{clean}]",
        f"data.test=[manifest:{occluded}]",
        f"data.cache_dir={s.out / 'cache'}",
        f"model.input_size={s.size}",
        f"train.seed={seed}",
    ]
    if s.epochs is not None:
        overrides.append(f"train.epochs={s.epochs}")
    return load_config(RECIPES / f"{model}.yaml", [*overrides, *s.overrides])


def synthetic_template(manifest: Path) -> list[list[float]]:
    """The generator's mean five-point framing (fractions of the side), from the train rows.

    Stored in the demo checkpoints' ``meta.json`` as an upright box ``framing`` with this template
    (the faces are drawn turned up to 10 degrees, never aligned), so that `fermixnet predict`
    crops detected faces the way the synthetic training images frame theirs.
    """
    from fermixnet.inference.faces import complete_landmarks

    keys = ("eye_l", "eye_r", "nose", "mouth")  # template indices 0, 1, 2 and 5 (mouth centre)
    with open(manifest, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
    points = [complete_landmarks(
        np.array([[float(r[f"lm_{k}_x"]), float(r[f"lm_{k}_y"])] for k in keys]), (0, 1, 2, 5))
        for r in rows]
    return np.mean(points, axis=0).round(4).tolist()


def _store_template(run_dir: Path, template: list[list[float]]) -> None:
    for meta_file in (run_dir / "checkpoints").glob("*/meta.json"):
        meta = json.loads(meta_file.read_text())
        meta["framing"] = Framing("box", template=tuple(map(tuple, template))).to_meta()
        atomic_write(meta_file, json.dumps(meta, indent=1))


def run_demo(s: DemoSettings, log: Callable[[str], None] = print) -> DemoResult:
    """Run the whole demo; returns the table rows, timings and where the report is."""
    from fermixnet.engine import fit
    from fermixnet.report import write_report
    from fermixnet.report.plots import mix_samples_preview

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    clean, occluded = make_data(s, log)
    template = synthetic_template(clean / "manifest.csv")
    timings["data"] = time.perf_counter() - t0
    rows: list[DemoRow] = []
    runs: list[Path] = []
    for seed in s.seeds:
        for label, model in MODELS:
            run_dir = s.out / "runs" / f"seed{seed}" / model
            log(f"train: {label}, seed {seed} -> {run_dir}")
            t = time.perf_counter()
            cfg = recipe(model, s, seed, clean, occluded)
            result = fit(cfg, run_dir, resume=(run_dir / "checkpoints").exists(),
                         preview=mix_samples_preview)
            timings[f"train {label} seed {seed}"] = time.perf_counter() - t
            _store_template(run_dir, template)
            (test,) = result.test.values()  # the occluded copy holds the clean images too
            rows.append(row_from_eval(label, seed, test["best"]))
            runs.append(run_dir)
    t = time.perf_counter()
    report_dir = s.out / "report"
    names = [f"{label} (seed {seed})" for seed in s.seeds for label, _ in MODELS]
    report = write_report(runs, report_dir, names=names)
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    checkpoint = s.out / "runs" / f"seed{s.seeds[0]}" / "fermixnet" / "checkpoints" / "best"
    plot_demo(spread_rows(rows), report_dir / "plots" / "demo_accuracy.png")
    summary = format_summary(rows, timings, checkpoint, quick=s.quick)
    atomic_write(report_dir / "summary.md", summary)
    atomic_write(report_dir / "summary.json", json.dumps(
        {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(s).items()},
         "rows": [asdict(r) for r in rows], "timings": timings,
         "checks": [asdict(c) for c in target_checks(spread_rows(rows))]}, indent=1))
    return DemoResult(rows=rows, timings=timings, report=report, checkpoint=checkpoint)


__all__ = ["DemoResult", "DemoSettings", "format_table", "make_data", "recipe", "run_demo"]
