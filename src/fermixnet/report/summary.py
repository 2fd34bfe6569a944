"""The summary table that opens a report over several runs: one row per test set and subset, one
column per run, the difference to the first run, and the mean over the occluded sets.

Numbers are the fused head's accuracy from the runs' saved evaluation files (best-by-validation
weights where a run has them), never recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Subset keys naming occlusion types (`FERDataset.subsets`); the finer `occluder=` (one object)
# is left out of the mean, so each occluded image counts once.
_OCCLUSION_KEYS: tuple[str, ...] = ("occlusion=", "occlusion_type=")
_NONE = ("none", "", "0")
MEAN_ROW = "mean over occluded sets"

Evals = Mapping[str, Mapping[str, Any]]  # test set -> EvalResult dict (`EvalResult.to_dict`)


def _fused(ev: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (ev or {}).get("heads", {}).get("fused", {})


def _acc(ev: Mapping[str, Any] | None, subset: str | None) -> float | None:
    fused = _fused(ev)
    m = fused.get("overall") if subset is None else fused.get("subsets", {}).get(subset)
    return None if m is None else m.get("accuracy")


def occluded_rows(ev: Mapping[str, Any]) -> list[str | None]:
    """Rows of one test set that count as occluded sets: the whole set when all its images are
    occluded (None), else its occlusion-type subsets, else its `occluded` subset."""
    fused = _fused(ev)
    subsets = fused.get("subsets", {})
    n = fused.get("overall", {}).get("n", 0)
    if n and subsets.get("occluded", {}).get("n") == n:
        return [None]
    kinds = [k for k in subsets if k.startswith(_OCCLUSION_KEYS)
             and k.partition("=")[2].lower() not in _NONE]
    return kinds or (["occluded"] if "occluded" in subsets else [])


def summary_rows(
    runs: Sequence[Evals],
) -> list[tuple[str, str, list[float | None]]]:
    """(test set, subset or "all", accuracy per run) rows, then the occluded mean row.

    Args:
        runs: per run, its evaluation dicts by test set (the weights a report prefers).

    Returns:
        Rows in test-set order of first appearance; the last row is :data:`MEAN_ROW` when any
        set is occluded (the mean over a run's occluded rows; None where it lacks one of them).
    """
    tests = list(dict.fromkeys(t for r in runs for t in r))
    rows: list[tuple[str, str, list[float | None]]] = []
    occluded: list[tuple[str, str | None]] = []
    for test in tests:
        evs = [r.get(test) for r in runs]
        subsets = list(dict.fromkeys(s for ev in evs for s in _fused(ev).get("subsets", {})))
        rows.append((test, "all", [_acc(ev, None) for ev in evs]))
        rows += [(test, s, [_acc(ev, s) for ev in evs]) for s in subsets]
        first = next((ev for ev in evs if ev), None)
        occluded += [(test, s) for s in occluded_rows(first or {})]
    if occluded:
        means: list[float | None] = []
        for r in runs:
            vals = [_acc(r.get(t), s) for t, s in occluded]
            means.append(None if any(v is None for v in vals) else sum(vals) / len(vals))
        rows.append((MEAN_ROW, f"{len(occluded)} occluded", means))
    return rows


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}"


def _diff(v: float | None, ref: float | None) -> str:
    return "–" if v is None or ref is None else f"{100 * (v - ref):+.2f}"


def summary_table(names: Sequence[str], runs: Sequence[Evals]) -> tuple[str, list[list[Any]]]:
    """Markdown summary table and its CSV rows (`run, set, metric, value`).

    Columns: test set, subset, then each run's accuracy (%) and, after the first run, its
    difference to the first run in points.
    """
    header = ["test set", "subset", names[0]]
    for name in names[1:]:
        header += [name, f"Δ vs {names[0]}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    csv_rows: list[list[Any]] = []
    for test, subset, vals in summary_rows(runs):
        cells = [test, subset, _pct(vals[0])]
        for v in vals[1:]:
            cells += [_pct(v), _diff(v, vals[0])]
        lines.append("| " + " | ".join(cells) + " |")
        csv_rows += [[n, test, f"summary {subset}", v] for n, v in zip(names, vals, strict=True)]
    return "\n".join(lines), csv_rows
