"""`fermixnet.run_layout`: the names of a run folder's files, checked against the literal names
the docs promise (docs/training.md, "What a run folder holds"), and the parsing of result files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fermixnet.run_layout import ComparisonLayout, ReportLayout, RunLayout, SweepLayout


def test_run_folder_names_are_the_documented_ones(tmp_path):
    run = RunLayout(tmp_path)
    rel = {name: getattr(run, name).relative_to(tmp_path).as_posix() for name in (
        "config", "metrics_json", "metrics_csv", "data_json", "tensorboard", "checkpoints",
        "last", "best", "eval_dir", "plots", "mix_samples", "task")}
    assert rel == {
        "config": "config.yaml", "metrics_json": "metrics.json", "metrics_csv": "metrics.csv",
        "data_json": "data.json", "tensorboard": "tensorboard", "checkpoints": "checkpoints",
        "last": "checkpoints/last", "best": "checkpoints/best", "eval_dir": "eval",
        "plots": "plots", "mix_samples": "plots/mix_samples.png", "task": "task.json"}
    assert run.eval_json("raf-db", "best") == tmp_path / "eval" / "raf-db-best.json"
    assert run.eval_json("raf-db") == tmp_path / "eval" / "raf-db.json"
    assert RunLayout(str(tmp_path)).root == tmp_path  # a str root becomes a Path


def test_unknown_checkpoint_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'newest'"):
        RunLayout(tmp_path).checkpoint("newest")
    with pytest.raises(ValueError, match="'final'"):
        RunLayout(tmp_path).eval_json("raf", "final")


def test_eval_files_tell_fit_results_from_eval_results(tmp_path):
    run = RunLayout(tmp_path)
    assert run.eval_files() == {}  # no eval/ folder yet
    run.eval_dir.mkdir()
    for name in ("raf-db-best", "raf-db-last", "my-set", "fer-last", "notes"):
        (run.eval_dir / f"{name}.json").write_text("{}")
    (run.eval_dir / "readme.txt").write_text("")
    assert set(run.eval_files()) == {("raf-db", "best"), ("raf-db", "last"), ("my-set", None),
                                     ("fer", "last"), ("notes", None)}
    assert run.eval_files()[("my-set", None)] == run.eval_json("my-set")


def test_report_sweep_and_comparison_folders(tmp_path):
    report = ReportLayout(tmp_path)
    assert (report.markdown.name, report.csv.name) == ("report.md", "report.csv")
    assert report.plot("curves") == tmp_path / "plots" / "curves.png"
    assert (report.summary_md.name, report.summary_json.name) == ("summary.md", "summary.json")
    sweep = SweepLayout(tmp_path)
    assert [p.name for p in (sweep.plan, sweep.summary_md, sweep.summary_csv, sweep.submitit)] \
        == ["sweep.json", "summary.md", "summary.csv", ".submitit"]
    assert sweep.run("pa", 3).root == tmp_path / "pa" / "seed3"
    (tmp_path / "pb" / "seed1").mkdir(parents=True)
    (tmp_path / "pa" / "seed2").mkdir(parents=True)
    (tmp_path / "pa" / "seed0.txt").parent.mkdir(exist_ok=True)
    (tmp_path / "pa" / "seed0.txt").write_text("")  # a file, not a run folder
    assert [r.root.relative_to(tmp_path) for r in sweep.runs_on_disk()] == [
        Path("pa/seed2"), Path("pb/seed1")]
    cmp = ComparisonLayout(tmp_path)
    assert cmp.run(0, "fermixnet").best == tmp_path / "runs/seed0/fermixnet/checkpoints/best"
    assert cmp.report.root == tmp_path / "report"
    assert (cmp.data.name, cmp.cache.name) == ("data", "cache")
