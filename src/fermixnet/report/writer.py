"""`write_report`: markdown tables (several runs side by side), PNG plots and a CSV of every
number, from run folders written by `fit` or `fermixnet eval`."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fermixnet.fileio import atomic_write
from fermixnet.report import plots
from fermixnet.report.summary import summary_table
from fermixnet.run_layout import ReportLayout, RunLayout

_WEIGHTS_ORDER = ("last", "best", "eval")
"""How each results file's weights show: `fit`'s last and best checkpoints, then `eval`, the
results of `fermixnet eval --out` (`RunLayout.eval_files` gives those as None)."""


@dataclass
class RunRecord:
    """What a report reads from one run folder."""

    name: str
    path: Path
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    evals: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(test set, weights: last | best | eval) -> EvalResult dict."""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def load_run(path: str | Path, name: str | None = None) -> RunRecord:
    """Read `metrics.json`, `config.yaml` and `eval/*.json` of a run folder.

    Raises:
        FileNotFoundError: the folder has neither metrics nor evaluation files.
    """
    path = Path(path)
    run = RunLayout(path)
    metrics = run.metrics_json
    if not metrics.is_file() and not run.eval_dir.is_dir():
        raise FileNotFoundError(f"{path}: no {metrics.name} or {run.eval_dir.name}/ folder; is it "
                                "a run folder written by `fermixnet train` or `fermixnet eval "
                                "--out`?")
    rec = RunRecord(name=name or path.name, path=path)
    if metrics.is_file():
        data = _read_json(metrics)
        rec.history = list(data.pop("history", []))
        rec.summary = data
        rec.name = name or data.get("name") or path.name
    if run.config.is_file():
        rec.config = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
    for (test, which), f in run.eval_files().items():
        rec.evals[(test, which or "eval")] = _read_json(f)
    return rec


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _runs_table(runs: Sequence[RunRecord]) -> str:
    rows = []
    for r in runs:
        c, s = r.config, r.summary
        mix = c.get("mix", {})
        rows.append([r.name, c.get("model", {}).get("name", "–"),
                     str(c.get("model", {}).get("mid_branch", "–")), mix.get("method", "–"),
                     str(mix.get("p_mix", "–")), str(c.get("loss", {}).get("alpha", "–")),
                     str(c.get("loss", {}).get("beta", "–")),
                     f"{s.get('epochs_completed', '–')}/{s.get('epochs', '–')}",
                     str(s.get("best_epoch", "–")), _pct(s.get("best_val"))])
    return _table(["run", "model", "mid branch", "mix", "p_mix", "alpha", "beta", "epochs",
                   "best epoch (val)", "best val acc %"], rows)


def _metric_rows(runs: Sequence[RunRecord], test: str) -> list[tuple[str, list[float | None]]]:
    """(row label, value per run) for one test set: each weights x head, then each subset."""
    rows: list[tuple[str, list[float | None]]] = []

    def get(r: RunRecord, which: str, head: str, subset: str | None, metric: str):
        block = r.evals.get((test, which), {}).get("heads", {}).get(head)
        if block is None:
            return None
        m = block["overall"] if subset is None else block["subsets"].get(subset)
        return None if m is None else m.get(metric)

    labels = {"last": "last epoch", "best": "best by val", "eval": "checkpoint"}
    for which in _WEIGHTS_ORDER:
        if not any((test, which) in r.evals for r in runs):
            continue
        for head in ("fused", "high", "mid"):
            for metric in ("accuracy", "balanced_accuracy"):
                if metric == "balanced_accuracy" and head != "fused":
                    continue
                vals = [get(r, which, head, None, metric) for r in runs]
                if any(v is not None for v in vals):
                    rows.append((f"{metric} ({labels[which]}, {head})", vals))
        subsets: list[str] = []
        for r in runs:
            heads = r.evals.get((test, which), {}).get("heads", {})
            subsets += [s for s in heads.get("fused", {}).get("subsets", {}) if s not in subsets]
        for sub in subsets:
            rows.append((f"{sub} ({labels[which]})",
                         [get(r, which, "fused", sub, "accuracy") for r in runs]))
    return rows


def _preferred(rec: RunRecord, test: str) -> dict[str, Any] | None:
    for which in ("best", "eval", "last"):
        if (test, which) in rec.evals:
            return rec.evals[(test, which)]
    return None


def _test_section(runs: Sequence[RunRecord], test: str, out: ReportLayout,
                  csv_rows: list) -> list[str]:
    lines = [f"## Test set `{test}`", "", "Accuracy in %; the test set never selects a "
             "checkpoint (best is chosen on validation).", ""]
    rows = _metric_rows(runs, test)
    lines.append(_table(["metric", *[r.name for r in runs]],
                        [[label, *[_pct(v) for v in vals]] for label, vals in rows]))
    for label, vals in rows:
        csv_rows += [[r.name, test, label, v] for r, v in zip(runs, vals, strict=True)]
    classes: list[str] = []
    for r in runs:
        ev = _preferred(r, test)
        if ev:
            classes += [c for c in ev["classes"] if c not in classes]
    per_class = {c: [(_preferred(r, test) or {}).get("heads", {}).get("fused", {})
                     .get("overall", {}).get("per_class", {}).get(c) for r in runs]
                 for c in classes}
    lines += ["", "Per-class accuracy (%), fused head, best-by-validation weights:", "",
              _table(["class", *[r.name for r in runs]],
                     [[c, *map(_pct, vals)] for c, vals in per_class.items()]), ""]
    for c, vals in per_class.items():
        csv_rows += [[r.name, test, f"per_class {c}", v] for r, v in zip(runs, vals, strict=True)]
    lines += _test_plots(runs, test, out)
    return lines


def _test_plots(runs: Sequence[RunRecord], test: str, out: ReportLayout) -> list[str]:
    lines = []
    subset_acc = {}
    for r in runs:
        ev = _preferred(r, test)
        if not ev:
            continue
        png = plots.plot_confusion(ev["heads"]["fused"]["overall"]["confusion"], ev["classes"],
                                   out.plot(f"confusion_{r.name}_{test}"),
                                   title=f"{r.name} on {test}")
        lines.append(f"![confusion {r.name}]({png.relative_to(out.root).as_posix()})")
        fused = ev["heads"]["fused"]
        subset_acc[r.name] = {"all": fused["overall"]["accuracy"],
                              **{s: m["accuracy"] for s, m in fused["subsets"].items()}}
    if any(len(v) > 1 for v in subset_acc.values()):
        png = plots.plot_subset_accuracy(subset_acc, out.plot(f"subsets_{test}"),
                                         title=f"accuracy per subset on {test}")
        lines.append(f"![subsets]({png.relative_to(out.root).as_posix()})")
    return [*lines, ""]


def write_report(runs: Sequence[str | Path], out_dir: str | Path,
                 names: Sequence[str] | None = None) -> Path:
    """Write `report.md`, `report.csv` and `plots/*.png` comparing one or more runs.

    Args:
        runs: run folders (from `fermixnet train` or `fermixnet eval --out`).
        out_dir: where to write (created).
        names: column labels (default: each run's config name or folder name).

    Returns:
        The path of `report.md`.
    """
    if not runs:
        raise ValueError("write_report needs at least one run folder")
    if names is not None and len(names) != len(runs):
        raise ValueError(f"{len(names)} names given for {len(runs)} runs")
    records = [load_run(p, names[i] if names else None) for i, p in enumerate(runs)]
    seen: dict[str, int] = {}
    for r in records:  # unique column labels
        seen[r.name] = seen.get(r.name, 0) + 1
        if seen[r.name] > 1:
            r.name = f"{r.name}#{seen[r.name]}"
    out = ReportLayout(Path(out_dir))
    out.plots.mkdir(parents=True, exist_ok=True)
    lines = ["# fermixnet report", ""]
    csv_rows: list[list[Any]] = []
    tests = dict.fromkeys(t for r in records for t, _ in r.evals)
    if len(records) > 1 and tests:
        table, rows = summary_table([r.name for r in records], [
            {t: ev for t in tests if (ev := _preferred(r, t)) is not None} for r in records])
        lines += ["## Summary", "", "Accuracy in % (fused head, best-by-validation weights where "
                  "saved); Δ: points against the first run.", "", table, ""]
        csv_rows += rows
    lines += [_runs_table(records), ""]
    for r in records:
        for h in r.history:
            csv_rows += [[r.name, "train", f"epoch {h['epoch']} {k}", v] for k, v in h.items()
                         if k != "epoch"]
    if any(r.history for r in records):
        png = plots.plot_curves({r.name: r.history for r in records if r.history},
                                out.plot("curves"))
        lines += ["## Training curves", "", f"![curves]({png.relative_to(out.root).as_posix()})",
                  ""]
    for test in tests:
        lines += _test_section(records, test, out, csv_rows)
    lines += _mix_section(records, out)
    buf = io.StringIO()
    csv.writer(buf).writerows([["run", "set", "metric", "value"], *csv_rows])
    atomic_write(out.csv, buf.getvalue())
    atomic_write(out.markdown, "\n".join(lines) + "\n")
    return out.markdown


def _mix_section(records: Sequence[RunRecord], out: ReportLayout) -> list[str]:
    lines = []
    for r in records:
        src = RunLayout(r.path).mix_samples
        if src.is_file():
            dst = out.plot(f"{src.stem}_{r.name}")
            if src.resolve() != dst.resolve():
                shutil.copyfile(src, dst)
            lines.append(f"![mix samples {r.name}]({dst.relative_to(out.root).as_posix()})")
    if lines:
        lines = ["## Mixed training samples", "",
                 "Columns: the original, then each mixed version (partner: the next image).", "",
                 *lines, ""]
    return lines
