"""The main job on the embedded data: `fermixnet demo`.

Draws the synthetic FACS data set, then runs `fermixnet compare` on it (`fermixnet.demo.compare`):
an occluded copy of its test split (one copy per occlusion type, the same faces each time), a plain
ResNet-18 and FERMixNet trained with the same data, seed, schedule and epochs (Table 1's first and
last rows), both evaluated on the clean and the occluded faces (Table 2's structure); writes the
report with the demo's targets and prints the comparison.

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

from fermixnet.demo.compare import MODELS, CompareSettings, run_comparison
from fermixnet.demo.summary import (
    DemoRow,
    format_summary,
    format_table,
    plot_demo,
    spread_rows,
    target_checks,
)
from fermixnet.fileio import atomic_write
from fermixnet.framing import Framing
from fermixnet.models.contract import META_NAME
from fermixnet.run_layout import ComparisonLayout, RunLayout


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


def make_data(s: DemoSettings, log: Callable[[str], None]) -> Path:
    """Draw the synthetic set, unless it is already there; returns its folder."""
    from fermixnet.synth.generate import generate_synthetic

    data = ComparisonLayout(s.out).data
    clean, stamp_file = data / "synthetic", data / "settings.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == data_stamp(s):
        log(f"data: reusing {clean}")
        return clean
    log(f"data: drawing {s.train}/{s.val}/{s.test} synthetic faces at {s.size} px into {clean}")
    generate_synthetic(clean, seed=s.data_seed, size=s.size,
                       counts={"train": s.train, "val": s.val, "test": s.test}, workers=2)
    atomic_write(stamp_file, json.dumps(data_stamp(s)))
    return clean


def data_stamp(s: DemoSettings) -> dict[str, int]:
    """What the synthetic set is drawn from: a set drawn otherwise is never reused."""
    return {"seed": s.data_seed, "size": s.size, "train": s.train, "val": s.val, "test": s.test}


def compare_settings(s: DemoSettings, clean: Path) -> CompareSettings:
    """The demo as `fermixnet compare` on the synthetic set: the demo's recipe pair, the
    occluders seeded with `data_seed + 1`."""
    return CompareSettings(data=[f"manifest:{clean}"], out=s.out, seeds=s.seeds, size=s.size,
                           epochs=s.epochs, overrides=s.overrides,
                           occlusion_seed=s.data_seed + 1, stamp=data_stamp(s))


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
    for meta_file in RunLayout(run_dir).checkpoints.glob(f"*/{META_NAME}"):
        meta = json.loads(meta_file.read_text())
        meta["framing"] = Framing("box", template=tuple(map(tuple, template))).to_meta()
        atomic_write(meta_file, json.dumps(meta, indent=1))


def run_demo(s: DemoSettings, log: Callable[[str], None] = print) -> DemoResult:
    """Run the whole demo; returns the table rows, timings and where the report is."""
    from fermixnet.report import write_report

    t0 = time.perf_counter()
    clean = make_data(s, log)
    template = synthetic_template(clean / "manifest.csv")
    synth = time.perf_counter() - t0
    cmp = run_comparison(compare_settings(s, clean), log,
                         after_fit=lambda run_dir: _store_template(run_dir, template))
    (rows,) = cmp.rows.values()  # the occluded copy holds the clean images too
    timings = {"data": synth + cmp.timings.pop("occlude"), **cmp.timings}
    t = time.perf_counter()
    layout = ComparisonLayout(s.out)
    report = write_report(cmp.runs, layout.report.root, names=cmp.names)
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    checkpoint = layout.run(s.seeds[0], MODELS[-1][1]).best  # FERMixNet's
    plot_demo(spread_rows(rows), layout.report.plot("demo_accuracy"))
    summary = format_summary(rows, timings, checkpoint, quick=s.quick)
    atomic_write(layout.report.summary_md, summary)
    atomic_write(layout.report.summary_json, json.dumps(
        {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(s).items()},
         "rows": [asdict(r) for r in rows], "timings": timings,
         "checks": [asdict(c) for c in target_checks(spread_rows(rows))]}, indent=1))
    return DemoResult(rows=rows, timings=timings, report=report, checkpoint=checkpoint)


__all__ = ["DemoResult", "DemoSettings", "compare_settings", "format_table", "make_data",
           "run_demo", "synthetic_template"]
