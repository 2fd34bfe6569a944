"""`fermixnet compare`: ResNet-18 vs FERMixNet (or any arms) under occlusion, on any data.

Given data specs, a recipe and seeds: writes an occluded copy of each data set's test split with
the project's occluders (`fermixnet.synth.occlude.occlude_dataset`; every test face clean and once
per occlusion type, as `fermixnet data occlude` does), trains a plain ResNet-18 (Table 1, first
row: the recipe without the mid-level branch and FERMix) and FERMixNet (the recipe) with the same
data, seed, schedule and epochs, selects each run's checkpoint on validation (never on the test
set), evaluates both clean and per occluder (Table 2's structure) and writes the summary table,
plot and report, with mean and spread over seeds. `fermixnet demo` is this comparison on the
synthetic faces (`fermixnet.demo.run`). `--arms` / `--recipes` compare any models instead of the
pair (`fermixnet.demo.arms`): every arm gets the same data, budget, seeds and test copies, and arms
that train with the project's occluders are tested on the occluder families none of them saw.

Before training it says how long the runs will take (`fermixnet.demo.estimate`). Run again after
a kill, it reuses the occluded copies and the finished runs and resumes a half-done run from its
last checkpoint (`fit(resume=True)`: the same weights as an uninterrupted run).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fermixnet.config import Config
from fermixnet.demo.arms import BASELINE_OVERRIDES, RECIPES, Arm, held_out, resolve_arms
from fermixnet.demo.summary import DemoRow, row_from_eval
from fermixnet.fileio import atomic_write
from fermixnet.run_layout import ComparisonLayout, RunLayout

MODELS: tuple[tuple[str, str], ...] = (("ResNet-18", "resnet18"), ("FERMixNet", "fermixnet"))
"""(label, run folder name) of the baseline and of FERMixNet, the default arms, in table order."""
QUICK_OVERRIDES: tuple[str, ...] = ("train.max_steps_per_epoch=2", "data.workers=0")
"""`--quick`: two steps per epoch (with 32 px, batch 16 and one epoch); for tests."""
DEFAULT_VAL_FRACTION = 0.1
"""Validation share carved from the training data when a data set has no val split and the
recipe carves none."""

__all__ = ["BASELINE_OVERRIDES", "MODELS", "RECIPES", "CompareSettings", "Comparison",
           "compare_configs", "recipe_pair", "run_compare", "run_comparison",
           "write_compare_report"]


@dataclass
class CompareSettings:
    """What `fermixnet compare` runs.

    Attributes:
        data: data specs `name:root[,key=value]`; several are trained on together and each one's
            test split becomes one occluded test set.
        out: output folder (`data/` occluded copies, `cache/`, `runs/`, `report/`).
        recipe: YAML recipe of FERMixNet (the baseline is it minus mid branch and FERMix); None:
            the demo's from-scratch pair (`src/fermixnet/demo/recipes/`).
        seeds: training seeds; one run pair per seed.
        size: input size in pixels (None: the recipe's).
        epochs: epochs of both models (None: the recipe's).
        batch: batch size of both models (None: the recipe's).
        quick: a smoke-sized run for tests (32 px, batch 16, one epoch of two steps).
        overrides: `key=value` config overrides applied to both models.
        occlusion_seed: seed of the occluders drawn onto the test faces.
        stamp: what the data were made from (the demo: the synthetic set's settings); an occluded
            copy made from other data is refused instead of reused.
        arms: arm presets (`fermixnet.demo.arms.ARM_PRESETS`) applied to `recipe`; None: the
            baseline and FERMixNet.
        recipes: one recipe file per arm instead of `arms` and `recipe`.
    """

    data: Sequence[str]
    out: Path = Path("fermixnet_compare")
    recipe: Path | None = None
    seeds: Sequence[int] = (0,)
    size: int | None = None
    epochs: int | None = None
    batch: int | None = None
    quick: bool = False
    overrides: Sequence[str] = field(default_factory=tuple)
    occlusion_seed: int = 0
    stamp: Mapping[str, Any] = field(default_factory=dict)
    arms: Sequence[str] | None = None
    recipes: Sequence[Path] | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if not self.data:
            raise ValueError("compare needs at least one --data NAME:ROOT")
        if self.recipes and self.recipe is not None:
            raise ValueError("give --recipe (with --arms) or --recipes, not both")
        self.arm_list()  # checked before any work
        if not self.seeds:
            raise ValueError("--seeds needs at least one seed")
        if self.recipe is not None and not Path(self.recipe).is_file():
            raise FileNotFoundError(f"--recipe {self.recipe}: no such file (see configs/)")
        if self.quick:
            self.size = self.size or 32
            self.epochs = self.epochs or 1
            self.batch = self.batch or 16
            self.overrides = (*QUICK_OVERRIDES, *self.overrides)
        for key in ("epochs", "batch"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"--{key} must be at least 1, got {getattr(self, key)}")
        if self.size is not None and self.size < 32:
            raise ValueError(f"--size must be at least 32 pixels, got {self.size}")

    def arm_list(self) -> list[Arm]:
        """The arms, the first one the reference of the differences."""
        return resolve_arms(self.arms, self.recipes, self.recipe)

    @property
    def layout(self) -> ComparisonLayout:
        """Where the copies, the cache, the runs and the report go under `out`."""
        return ComparisonLayout(self.out)


@dataclass
class Comparison:
    """What `run_comparison` trained: rows per test set, run folders, timings, the estimate."""

    rows: dict[str, list[DemoRow]]
    """Test set name -> one row per arm and seed (arms in order within each seed)."""
    runs: list[Path]
    names: list[str]
    """Report column label of each run, e.g. `FERMixNet (seed 0)`."""
    timings: dict[str, float]
    estimate: str
    trained_occluders: tuple[str, ...] = ()
    """Occluder families some arm trained with (`aug.occluders`); the test left them out."""
    test_occluders: tuple[str, ...] | None = None
    """Occluder families of the test copies (None: every one)."""


def recipe_pair(recipe: Path | None) -> list[tuple[str, str, Path, tuple[str, ...]]]:
    """(label, run folder name, recipe file, extra overrides) of the baseline and FERMixNet."""
    return [(a.label, a.name, a.recipe, a.overrides) for a in resolve_arms(None, None, recipe)]


def _flow_list(specs: Sequence[str | Path]) -> str:
    """A YAML flow list whose items keep their commas (JSON is YAML)."""
    return json.dumps([str(s) for s in specs])


@dataclass(frozen=True)
class DataPlan:
    """The specs of each role and the image counts, known before any work starts."""

    train: list[str]
    val: list[str]
    """Validation specs (their val split), or empty: carve a share of the training data."""
    test: list[str]
    """`manifest:` specs of the occluded copies."""
    counts: tuple[int, int, int]
    """Training, validation and test images (every occluded copy and the clean one)."""


def compare_configs(s: CompareSettings, seed: int, plan: DataPlan) -> list[Config]:
    """Each arm's config for one seed: same data, size, epochs, batch."""
    from fermixnet.config import load_config

    base = [f"data.train={_flow_list(plan.train)}", f"data.val={_flow_list(plan.val)}",
            f"data.test={_flow_list(plan.test)}", f"data.cache_dir={s.layout.cache}",
            f"train.seed={seed}"]
    if plan.val:
        base.append("data.val_fraction=0.0")
    for key, value in (("model.input_size", s.size), ("train.epochs", s.epochs),
                       ("train.batch_size", s.batch)):
        if value is not None:
            base.append(f"{key}={value}")
    out = []
    for arm in s.arm_list():
        path, extra = arm.recipe, arm.overrides
        cfg = load_config(path, [*base, *s.overrides, *extra])
        if not plan.val and cfg.data.val_fraction == 0:
            cfg = load_config(path, [*base, *s.overrides, *extra,
                                     f"data.val_fraction={DEFAULT_VAL_FRACTION}"])
        out.append(cfg)
    return out


def plan_data(s: CompareSettings, log: Callable[[str], None]) -> DataPlan:
    """Check the specs, count their images and decide validation (a val split, else a share of
    the training data); the occluded copies' folders are `OUT/data/<test set name>_occluded`."""
    from fermixnet.config import check_data_spec
    from fermixnet.data.registry import create_dataset, eval_set_names, parse_data_spec
    from fermixnet.synth.occlude import OCCLUSION_TYPES

    for spec in s.data:
        check_data_spec(spec, "--data")
        if "split" in parse_data_spec(spec)[2]:
            raise ValueError(f"--data {spec!r}: compare reads the train, val and test splits of "
                             "each data set itself; drop the split= option")  # fmt: skip
    n_train = n_val = n_test = 0
    has_val = True
    for spec in s.data:
        name, root, options = parse_data_spec(spec)
        n_train += len(create_dataset(name, root, "train", **options))
        n_test += len(create_dataset(name, root, "test", **options))
        try:
            n = len(create_dataset(name, root, "val", **options))
        except (ValueError, FileNotFoundError) as err:
            n, why = 0, str(err)
        else:
            why = "it is empty"
        if n == 0:
            log(f"data: {spec} has no val split ({why}); the runs select on a share of the "
                "training images (data.val_fraction)")
            has_val = False
        n_val += n
    if not has_val:
        n_val = 0
    folders = [s.layout.data / f"{label}_occluded" for label in eval_set_names(s.data)]
    return DataPlan(train=list(s.data), val=list(s.data) if has_val else [],
                    test=[f"manifest:{f}" for f in folders],
                    counts=(n_train, n_val, n_test * (1 + len(OCCLUSION_TYPES))))


def write_occluded(s: CompareSettings, plan: DataPlan, log: Callable[[str], None],
                   occluders: Sequence[str] | None = None) -> None:
    """One occluded copy of each data set's test split (reused when made from the same data),
    with only `occluders` (families no arm trained with) when given.

    Raises:
        ValueError: a copy in the folder was made from other data or settings.
    """
    from fermixnet.synth.occlude import OCCLUSION_TYPES, occlude_dataset

    for spec, test in zip(s.data, plan.test, strict=True):
        folder = Path(test.partition(":")[2])
        stamp_file = folder.with_name(f"{folder.name}.json")
        stamp = {"spec": spec, "seed": s.occlusion_seed, "types": list(OCCLUSION_TYPES),
                 **s.stamp}
        if occluders is not None:
            stamp["occluders"] = list(occluders)
        made = stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp
        if (folder / "manifest.csv").is_file():
            if not made:
                raise ValueError(f"{folder} holds an occluded copy made from other data or "
                                 "settings; remove it or choose another --out")
            log(f"data: reusing {folder}")
            continue
        log(f"data: occluding the test split of {spec} (each face once per occlusion type) "
            f"into {folder}")
        folder.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(stamp_file, json.dumps(stamp))  # the copy itself appears whole or not at all
        occlude_dataset(spec, folder, seed=s.occlusion_seed, splits=("test",),
                        occluders=occluders)


def first_batch(spec: str, size: int, batch: int):
    """The first `batch` training images of `spec` as (B, 3, size, size) uint8 (repeated when
    the split is smaller): what the speed measurement trains on."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from fermixnet.data.registry import create_dataset, parse_data_spec

    name, root, options = parse_data_spec(spec)
    ds = create_dataset(name, root, "train", **options)
    images = []
    for i in range(min(batch, len(ds))):
        x = torch.from_numpy(np.ascontiguousarray(ds.load(i))).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)  # (1, 3, S, S)
        images.append(x.round().clamp(0, 255).to(torch.uint8))
    out = torch.cat(images)
    return out.repeat((batch + len(out) - 1) // len(out), 1, 1, 1)[:batch]


def _epochs_done(run_dir: Path) -> int:
    try:
        metrics = RunLayout(run_dir).metrics_json
        return int(json.loads(metrics.read_text())["epochs_completed"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def estimate(s: CompareSettings, plan: DataPlan, configs: Sequence[Config]) -> str:
    """Measure each model's speed on the first training batch; the estimate of what is left."""
    from fermixnet.demo.estimate import format_estimate, measure_speed, run_cost
    from fermixnet.engine.distributed import resolve_device
    from fermixnet.engine.run_state import run_status

    arms = s.arm_list()
    pending = [(seed, i) for seed in s.seeds for i in range(len(arms))
               if run_status(_run_dir(s, seed, i)) != "complete"]
    reused = len(s.seeds) * len(arms) - len(pending)
    if not pending:
        return f"estimate: nothing to train ({reused} finished run(s) reused)"
    speeds = {}
    images = first_batch(s.data[0], configs[0].model.input_size, configs[0].train.batch_size)
    for i in sorted({i for _, i in pending}):
        speeds[i] = measure_speed(configs[i], images, steps=1 if s.quick else 3)
    costs = [run_cost(f"{arms[i].label}, seed {seed}", configs[i], plan.counts,
                      _epochs_done(_run_dir(s, seed, i)), speeds[i]) for seed, i in pending]
    device = resolve_device(configs[0].train.device)
    threads = f", {configs[0].train.cpu_threads or 'default'} thread(s)"
    return format_estimate(costs, f"{device}" + (threads if device.type == "cpu" else ""),
                           reused)


def _run_dir(s: CompareSettings, seed: int, arm: int) -> Path:
    return s.layout.run(seed, s.arm_list()[arm].name).root


def _read_best(run_dir: Path, names: Sequence[str]):
    """The best-by-validation test results a finished run saved (`eval/<set>-best.json`)."""
    from fermixnet.engine.evaluate import EvalResult

    out = {}
    for name in names:
        d = json.loads(RunLayout(run_dir).eval_json(name, "best").read_text())
        out[name] = EvalResult(d["dataset"], tuple(d["classes"]), d["heads"])
    return out


def train_run(cfg: Config, run_dir: Path, label: str, seed: int, log: Callable[[str], None],
              after_fit: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Train one run (resumed when half done, reused when finished); its best test results."""
    from fermixnet.data.registry import eval_set_names
    from fermixnet.engine import fit
    from fermixnet.engine.run_state import run_status
    from fermixnet.report.plots import mix_samples_preview

    status = run_status(run_dir)
    if status == "complete":
        log(f"train: {label}, seed {seed}: finished in {run_dir}, reusing it")
        return _read_best(run_dir, eval_set_names(cfg.data.test))
    log(f"train: {label}, seed {seed} -> {run_dir}"
        + (" (resuming from its last checkpoint)" if status == "partial" else ""))
    result = fit(cfg, run_dir, resume=status == "partial", preview=mix_samples_preview)
    if after_fit is not None:
        after_fit(run_dir)
    return {name: res["best"] for name, res in result.test.items()}


def run_comparison(s: CompareSettings, log: Callable[[str], None] = print,
                   after_fit: Callable[[Path], None] | None = None) -> Comparison:
    """Occluded copies, the estimate, both models per seed; the rows of the summary table.

    Args:
        s: the settings.
        log: where progress lines go.
        after_fit: called with a run folder after it trained (the demo stores its framing).
    """
    timings: dict[str, float] = {}
    t = time.perf_counter()
    plan = plan_data(s, log)
    configs = {seed: compare_configs(s, seed, plan) for seed in s.seeds}  # all checked first
    trained, left = held_out(configs[s.seeds[0]])
    if left is not None:
        log(f"data: arms train with the occluders {', '.join(trained)}; the test copies hold "
            f"only the others: {', '.join(left)}")
    text = estimate(s, plan, configs[s.seeds[0]])
    log(text)
    timings["estimate"] = time.perf_counter() - t
    t = time.perf_counter()
    write_occluded(s, plan, log, left)
    timings["occlude"] = time.perf_counter() - t
    rows: dict[str, list[DemoRow]] = {}
    runs, names = [], []
    for seed in s.seeds:
        for i, label in enumerate(a.label for a in s.arm_list()):
            t = time.perf_counter()
            run_dir = _run_dir(s, seed, i)
            best = train_run(configs[seed][i], run_dir, label, seed, log, after_fit)
            timings[f"train {label} seed {seed}"] = time.perf_counter() - t
            for name, res in best.items():
                rows.setdefault(name, []).append(row_from_eval(label, seed, res))
            runs.append(run_dir)
            names.append(f"{label} (seed {seed})")
    return Comparison(rows=rows, runs=runs, names=names, timings=timings, estimate=text,
                      trained_occluders=trained, test_occluders=left)


def write_compare_report(s: CompareSettings, cmp: Comparison) -> Path:
    """`OUT/report/`: report.md of every run, summary.md/.json and one plot per test set."""
    from dataclasses import asdict

    from fermixnet.demo.summary import format_compare_summary, plot_demo, spread_rows
    from fermixnet.report import write_report

    report_dir = s.layout.report
    report = write_report(cmp.runs, report_dir.root, names=cmp.names)
    for name, rows in cmp.rows.items():
        plot_demo(spread_rows(rows), report_dir.plot(f"compare_{name}"),
                  title=f"{name}: test faces clean and occluded")
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(s).items()}
    occluders = {"trained": list(cmp.trained_occluders),
                 "test": None if cmp.test_occluders is None else list(cmp.test_occluders)}
    atomic_write(report_dir.summary_md, format_compare_summary(
        cmp.rows, settings, cmp.timings, [a.label for a in s.arm_list()], occluders))
    atomic_write(report_dir.summary_json, json.dumps(
        {"settings": settings, "estimate": cmp.estimate, "timings": cmp.timings,
         **({"occluders": occluders} if cmp.test_occluders is not None else {}),
         "rows": {name: [asdict(r) for r in rows] for name, rows in cmp.rows.items()}},
        indent=1, default=str))
    return report


def run_compare(s: CompareSettings, log: Callable[[str], None] = print) -> Path:
    """The whole comparison; returns the path of `report/summary.md`."""
    cmp = run_comparison(s, log)
    write_compare_report(s, cmp)
    return s.layout.report.summary_md
