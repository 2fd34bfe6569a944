"""Test-set names from specs, and the summary table that opens a report over several runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from fermixnet.data.registry import create_dataset, eval_set_names
from fermixnet.engine.evaluate import compute_eval_result
from fermixnet.report import write_report
from fermixnet.report.summary import MEAN_ROW, occluded_rows

CLASSES = ["neutral", "happy", "sad"]
LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])


def test_sets_are_named_by_their_folders():
    specs = ["folder:/data/occ/sunglasses", "folder:/data/occ/mask", "folder:/data/clean/"]
    assert eval_set_names(specs) == ["sunglasses", "mask", "clean"]
    assert eval_set_names(["manifest:/x/synthetic_occluded/manifest.csv"]) == [
        "synthetic_occluded"]
    assert eval_set_names(["rafdb:~/RAF-DB,name=raf test"]) == ["raf_test"]


def test_names_stay_unique_and_stable_when_folders_share_a_name():
    specs = ["folder:/a/lab1/test", "folder:/a/lab2/test", "folder:/b/other"]
    assert eval_set_names(specs) == ["lab1-test", "lab2-test", "other"]
    assert eval_set_names(specs[::-1]) == ["other", "lab2-test", "lab1-test"]  # order-free
    same = ["rafdb:/d/RAF", "rafdb:/d/RAF,split=val", "rafdb:/d/RAF"]
    assert eval_set_names(same) == ["RAF", "RAF-val", "RAF-2"]
    assert eval_set_names(["folder:/x/a,name=a", "folder:/y/a"]) == ["a", "y-a"]
    with pytest.raises(ValueError, match="same name"):
        eval_set_names(["folder:/x,name=t", "folder:/y,name=t"])


def test_occluded_option_marks_a_folder_as_occluded(tmp_path):
    for cls in ("happy", "sad"):
        (tmp_path / "test" / cls).mkdir(parents=True)
        (tmp_path / "test" / cls / "a.png").write_bytes(b"")
    ds = create_dataset("folder", tmp_path, "test", occluded="true", num_classes="7")
    assert ds.subsets()["occluded"] == [0, 1]
    assert "occluded" not in create_dataset("folder", tmp_path, "test", num_classes="7").subsets()


def _eval(path: Path, test: str, correct: list[int], subsets: dict[str, list[int]]) -> None:
    """Save an evaluation of 8 images of which the indices in `correct` are right."""
    logits = torch.nn.functional.one_hot((LABELS + 1) % 3, 3).float()
    logits[correct] = torch.nn.functional.one_hot(LABELS[correct], 3).float()
    res = compute_eval_result(test, {"fused": logits, "high": logits}, LABELS, CLASSES, subsets)
    res.save(path / "eval" / f"{test}-best.json")


def _run(path: Path, name: str, shift: int) -> Path:
    all8 = list(range(8))
    _eval(path, "clean", all8[: 6 + shift], {})
    _eval(path, "sunglasses", all8[: 3 + shift], {"occluded": all8})
    _eval(path, "mixed", all8[: 2 + shift],
          {"occluded": all8[:6], "occlusion=upper": [0, 1, 2], "occlusion=lower": [3, 4, 5],
           "occluder=scarf": [3, 4], "occlusion=none": [6, 7]})
    (path / "metrics.json").write_text(json.dumps({"name": name, "history": []}))
    return path


def _acc(run: Path, test: str, subset: str | None = None) -> float:
    fused = json.loads((run / "eval" / f"{test}-best.json").read_text())["heads"]["fused"]
    return (fused["overall"] if subset is None else fused["subsets"][subset])["accuracy"]


def test_report_opens_with_a_summary_of_every_set_and_run(tmp_path):
    runs = [_run(tmp_path / n, n, s) for n, s in (("resnet", 0), ("fermix", 2), ("other", 1))]
    md = write_report(runs, tmp_path / "out").read_text()
    summary = md.index("## Summary")
    assert summary < md.index("| run | model") < md.index("## Test set `clean`")
    assert "| test set | subset | resnet | fermix | Δ vs resnet | other | Δ vs resnet |" in md
    # From the saved files: the occluded rows are sunglasses (all) and mixed's two types.
    rows = [("sunglasses", None), ("mixed", "occlusion=upper"), ("mixed", "occlusion=lower")]
    means = [sum(_acc(r, t, s) for t, s in rows) / 3 for r in runs]
    cells = [f"{100 * means[0]:.2f}"]
    for m in means[1:]:
        cells += [f"{100 * m:.2f}", f"{100 * (m - means[0]):+.2f}"]
    assert f"| {MEAN_ROW} | 3 occluded | {' | '.join(cells)} |" in md
    a, b = (_acc(r, "mixed", "occlusion=upper") for r in runs[:2])
    assert f"| mixed | occlusion=upper | {100 * a:.2f} | {100 * b:.2f} | {100 * (b - a):+.2f} |" \
        in md
    table = list(csv.reader((tmp_path / "out" / "report.csv").open()))
    assert ["fermix", MEAN_ROW, "summary 3 occluded", str(means[1])] in table
    single = write_report(runs[:1], tmp_path / "one").read_text()
    assert "## Summary" not in single  # one run: the per-set sections say it all


def test_occluded_rows_pick_whole_sets_then_types():
    def ev(n: int, subsets: dict[str, int]) -> dict:
        return {"heads": {"fused": {"overall": {"n": n},
                                    "subsets": {k: {"n": v} for k, v in subsets.items()}}}}

    assert occluded_rows(ev(8, {"occluded": 8, "occlusion=upper": 8})) == [None]
    assert occluded_rows(ev(8, {"occluded": 4, "occlusion=upper": 4, "occlusion=none": 4,
                                "occluder=hat": 2})) == ["occlusion=upper"]
    assert occluded_rows(ev(8, {"occluded": 4})) == ["occluded"]
    assert occluded_rows(ev(8, {})) == []
