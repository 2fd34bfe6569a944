"""A sweep's plan: which (config, seed) runs it holds and where their folders are.

The bottom of the sweep modules: `sweep_launch` (submitit tasks), `sweep_status`
(`fermixnet sweep --status`) and `sweep` (the runner and the summary) import it, and it imports
none of them. `OUT/sweep.json` (`SweepLayout.plan`) lists the planned run folders relative to the
sweep folder, so that `sweep --status` can name the ones not yet started.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from fermixnet.config import Config, load_config
from fermixnet.fileio import atomic_write
from fermixnet.run_layout import SweepLayout


def run_dir_of(out_dir: Path, cfg: Config) -> Path:
    """The run folder of one (config, seed) of a sweep."""
    return SweepLayout(out_dir).run(cfg.name, cfg.train.seed).root


def plan(
    configs: Sequence[str | Path], seeds: Sequence[int], overrides: Sequence[str] = ()
) -> list[Config]:
    """Every config with every seed, validated before any work starts.

    Raises:
        ValueError: no config or no seed, a bad config, or two configs with the same name.
    """
    if not configs or not seeds:
        raise ValueError("a sweep needs at least one config and one seed")
    cfgs = [load_config(c, [*overrides, f"train.seed={s}"]) for c in configs for s in seeds]
    seen: dict[tuple[str, int], str] = {}
    for path, cfg in zip([c for c in configs for _ in seeds], cfgs, strict=True):
        key = (cfg.name, cfg.train.seed)
        if key in seen and seen[key] != str(path):
            raise ValueError(f"configs {seen[key]} and {path} share the name {cfg.name!r}; "
                             "their runs would share a folder (set `name:` in one of them)")
        seen[key] = str(path)
    return cfgs


def write_plan(out_dir: Path, cfgs: Sequence[Config]) -> None:
    """Record the planned run folders in `OUT/sweep.json` (added to those of earlier calls)."""
    runs = read_plan(out_dir)
    runs += [r for r in (SweepLayout.run_name(c.name, c.train.seed) for c in cfgs)
             if r not in runs]
    atomic_write(SweepLayout(out_dir).plan, json.dumps({"runs": runs}, indent=1))


def read_plan(out_dir: Path) -> list[str]:
    """Run folders (relative to the sweep folder) planned so far, or those found on disk."""
    layout = SweepLayout(out_dir)
    if layout.plan.is_file():
        try:
            return list(json.loads(layout.plan.read_text(encoding="utf-8"))["runs"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{layout.plan}: not a sweep plan ({err})") from None
    return [str(r.root.relative_to(layout.root)) for r in layout.runs_on_disk()]
