"""Data-spec options through `fermixnet eval`, `train` and `compare` (issue 18), on the tiny
replicas of tests/test_spec_options.py with conftest's tiny trunk at 16 px.

`eval`: every option of every adapter that `data check` covers, with a random tiny checkpoint
(the option's effect: the set's name, size and subsets in the eval JSON). `train`: one training
run of one epoch per adapter, its training spec carrying that adapter's own options and its
validation and test specs the common ones (`split=`, `name=`, `framing=`, `occluded=`, `only=`,
`exclude_leaked=`, `skip_bad=`); one `compare` run; bad values refused before any work.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from conftest import TINY_ARCH, _registered_tiny_trunk
from fermixnet.cli import main
from fermixnet.data import create_dataset, parse_data_spec
from fermixnet.data.registry import eval_set_names
from test_spec_options import (
    ADAPTERS,
    BAD,
    BAD_REASON,
    GOOD,
    ONLY,
    Replicas,
    _options,
    _test_of,
    plain_report,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    r = Replicas.build(tmp_path_factory.mktemp("spec_commands"))
    with _registered_tiny_trunk():
        yield r


def run(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


@dataclass(frozen=True)
class TrainRun:
    """One training run: the training spec's own options, the model's classes, the option that
    every other spec of the run needs for those classes, and extra test specs' options (each
    spec `ADAPTER:ROOT,<options>`, or another adapter's as `adapter|<options>`)."""

    own: str
    classes: int = 7
    classes_option: str = ""
    tests: tuple[str, ...] = ()


# Between them the runs read every option of every adapter (docs/data.md, "Spec options").
TRAIN = {
    "folder": TrainRun("class_map=happy:sad,num_classes=8", 8, ",num_classes=8"),
    "manifest": TrainRun("file=manifest.csv,num_classes=7", 7, "",
                         ("only=occlusion=upper", "class_map=happy:sad")),
    "rafdb": TrainRun("images=original,label_file=ROOT/basic/EmoLabel/list_short.txt", 7, "",
                      ("occlusion_type_list=LISTS/rafdb_types.txt",
                       "occlusion_list=LISTS/rafdb_occ.txt,pose30_list=LISTS/rafdb_pose.txt,"
                       "pose45_list=LISTS/rafdb_pose2.txt", "fedro|only=occluded")),
    "ferplus": TrainRun("layout=csv,tie=random,seed=2,num_classes=7", 7, ",num_classes=7",
                        ("occlusion_list=LISTS/ferplus_occ.txt", "tie=first",
                         "vote=majority,layout=folders,pose30_list=LISTS/ferplus_pose.txt,"
                         "pose45_list=LISTS/ferplus_pose.txt")),
    "fer2013": TrainRun("layout=folders", 7, "", ("layout=csv",)),
    "affectnet": TrainRun("layout=npy,balance=downsample,max_per_class=2,seed=1,num_classes=8",
                          8, ",num_classes=8",
                          ("pose30_list=LISTS/affectnet_pose.txt", "layout=csv,occlusion_list="
                           "LISTS/affectnet_occ.txt,pose45_list=LISTS/affectnet_pose.txt")),
}  # fmt: skip


def _config(tmp: Path, r: Replicas, adapter: str) -> Path:
    plan = TRAIN[adapter]
    more = plan.classes_option
    tests = [r.spec(adapter, f"name=clean{more}"),
             r.spec(adapter, f"skip_bad=1,exclude_leaked=1,occluded=1,name=hard{more}", bad=True)]
    for k, extra in enumerate(plan.tests):
        other, sep, options = extra.partition("|")
        tests.append(r.spec(other, f"{options},name=extra{k}") if sep
                     else r.spec(adapter, f"{extra}{more},name=extra{k}"))  # fmt: skip
    own = plan.own.replace("ROOT", str(r.root(adapter)))
    path = tmp / "recipe.yaml"
    path.write_text(json.dumps({
        "model": {"name": TINY_ARCH, "num_classes": plan.classes, "input_size": 16},
        "data": {"train": [r.spec(adapter, f"framing=box:0.25,{own}")],
                 "val": [r.spec(adapter, f"split=test{more}")], "test": tests,
                 "workers": 0, "cache_dir": str(tmp / "cache")},
        "train": {"epochs": 1, "batch_size": 4, "device": "cpu", "log_every": 1},
        "eval": {"batch_size": 8}}))  # JSON is YAML  # fmt: skip
    return path


@pytest.mark.parametrize("adapter", TRAIN)
def test_train_reads_every_spec_option(replicas, capsys, tmp_path, adapter):
    code, text = run(capsys, ["train", "--config", str(_config(tmp_path, replicas, adapter)),
                              "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 0, text
    run_dir = tmp_path / "run"
    meta = json.loads((run_dir / "checkpoints/best/meta.json").read_text())
    assert meta["framing"] == {"kind": "box", "margin": 0.25}  # the training spec's framing=
    hard = json.loads((run_dir / "eval/hard-best.json").read_text())["heads"]["fused"]
    assert hard["subsets"]["occluded"]["n"] == hard["overall"]["n"] > 0  # occluded=1
    for name in ["clean"] + [f"extra{k}" for k in range(len(TRAIN[adapter].tests))]:
        assert (run_dir / "eval" / f"{name}-best.json").is_file(), name
    caches = json.loads((run_dir / "data.json").read_text())["caches"]
    lenient = [c for c in caches if c["on_error"] == "skip"]
    reasons = {k for c in lenient for k in c["skipped"]} | {
        "undecodable image" for c in lenient if c["undecodable"]}  # fmt: skip
    assert BAD_REASON[adapter] in reasons, caches  # skip_bad=1 counted the planted bad entry
    assert any("exclude_leaked" in k for k in reasons), caches  # the planted leak


def test_train_refuses_a_bad_option_value(replicas, capsys, tmp_path):
    cfg = _config(tmp_path, replicas, "folder")
    code, text = run(capsys, ["train", "--config", str(cfg), "--out", str(tmp_path / "run"),
                              "--set", f"data.val=['{replicas.spec('folder', 'occluded=maybe')}']"])
    assert code == 2 and "occluded='maybe': expected true/false" in text, text


def test_compare_reads_the_spec_options(replicas, capsys, tmp_path):
    spec = replicas.spec("manifest", "name=mine,framing=box:0.25,skip_bad=1,exclude_leaked=1",
                         bad=True)  # fmt: skip
    out = tmp_path / "cmp"
    code, text = run(capsys, ["compare", "--data", spec, "--quick", "--out", str(out), "--set",
                              "train.cpu_threads=1", f"model.name={TINY_ARCH}",
                              "model.input_size=16"])  # fmt: skip
    assert code == 0, text
    summary = json.loads((out / "report/summary.json").read_text())
    assert list(summary["rows"]) == ["mine_occluded"]  # name=
    meta = json.loads((out / "runs/seed0/fermixnet/checkpoints/best/meta.json").read_text())
    assert meta["framing"] == {"kind": "box", "margin": 0.25}
    caches = json.loads((out / "runs/seed0/fermixnet/data.json").read_text())["caches"]
    train = next(c for c in caches if c["split"] == "train")
    assert train["on_error"] == "skip" and "exclude_leaked" in " ".join(train["skipped"])


@pytest.mark.parametrize("option, words", [
    ("split=test", ["drop the split= option"]),
    ("occluded=maybe", ["occluded='maybe'", "expected true/false"]),
    ("colour=red", ["unknown option(s) colour", "accepted:"]),
])  # fmt: skip
def test_compare_refuses_a_bad_option_before_any_work(replicas, capsys, tmp_path, option, words):
    out = tmp_path / "cmp"
    code, text = run(capsys, ["compare", "--data", replicas.spec("folder", option), "--quick",
                              "--out", str(out)])  # fmt: skip
    assert code == 2 and all(w in text for w in words), text
    assert not out.exists()


# --- eval -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints(replicas, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Random tiny 7- and 8-class checkpoints at 16 px (conftest's tiny trunk, registered while
    `replicas` is alive)."""
    from fermixnet.models import create_model
    from fermixnet.models.weights import save_checkpoint

    folder = tmp_path_factory.mktemp("spec_ckpt")
    torch.manual_seed(0)
    for n in (7, 8):
        save_checkpoint(create_model(TINY_ARCH, num_classes=n, mid_branch=True),
                        folder / str(n), {"input_size": 16})  # fmt: skip
    return {7: folder / "7", 8: folder / "8"}


def evaluate(capsys, tmp_path: Path, checkpoints: dict[int, Path], spec: str) -> tuple[int, str]:
    name, root, options = parse_data_spec(spec)
    try:
        n = len(create_dataset(name, root, "test", **options).classes)
    except (ValueError, OSError):
        n = 7  # a bad spec: eval must refuse it whatever the checkpoint
    argv = ["eval", "--checkpoint", str(checkpoints[n]), "--data", spec, "--out", str(tmp_path),
            "--cache-dir", str(tmp_path.parent / "cache"), "--workers", "0", "--batch-size", "8"]
    return run(capsys, argv)


EVAL_GOOD = GOOD + [(a, ",".join(filter(None, ["split=test", ONLY[a][0], f"only={ONLY[a][1]}"])))
                    for a in ADAPTERS]  # fmt: skip


@pytest.mark.parametrize("adapter, option", EVAL_GOOD, ids=[f"{a}-{o}" for a, o in EVAL_GOOD])
def test_eval_reads_the_option(replicas, capsys, tmp_path, checkpoints, adapter, option):
    spec = replicas.spec(adapter, _options(replicas, adapter, option))
    code, text = evaluate(capsys, tmp_path, checkpoints, spec)
    assert code == 0, text
    name = eval_set_names([spec])[0]
    result = json.loads((tmp_path / "eval" / f"{name}.json").read_text())
    _, root, options = parse_data_spec(spec)
    ds = create_dataset(adapter, root, "test", **options)
    fused = result["heads"]["fused"]
    assert result["dataset"] == name and fused["overall"]["n"] == len(ds) > 0
    if "name=" in option:
        assert name == "mine"
    if "occluded=1" in option or "only=" in option:
        key = option.split("only=")[1] if "only=" in option else "occluded"
        assert fused["subsets"][key]["n"] == len(ds)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_eval_skip_bad_leaves_out_the_planted_bad_entry(replicas, capsys, tmp_path, checkpoints,
                                                        adapter):  # fmt: skip
    code, text = evaluate(capsys, tmp_path, checkpoints, replicas.spec(adapter, bad=True))
    assert code == 2 and text.startswith("fermixnet eval: error:"), text
    spec = replicas.spec(adapter, "skip_bad=1,name=lenient", bad=True)
    code, text = evaluate(capsys, tmp_path, checkpoints, spec)
    assert code == 0, text
    result = json.loads((tmp_path / "eval" / "lenient.json").read_text())
    plain = _test_of(plain_report(capsys, replicas, adapter))  # the root without the bad entry
    assert result["heads"]["fused"]["overall"]["n"] == plain["images"]


# Each bad value once (the data check tests try every adapter): eval reads through the same code.
BAD_ONCE = list({o: (a, o, w) for a, o, w in BAD}.values())


@pytest.mark.parametrize("adapter, option, words", BAD_ONCE, ids=[o for _, o, _ in BAD_ONCE])
def test_eval_refuses_a_bad_value(replicas, capsys, tmp_path, checkpoints, adapter, option,
                                  words):  # fmt: skip
    code, text = evaluate(capsys, tmp_path, checkpoints, replicas.spec(adapter, option))
    assert code == 2
    assert all(w in text for w in words), text


def test_eval_scores_images_as_stored_whatever_the_framing(replicas, capsys, tmp_path,
                                                          checkpoints):  # fmt: skip
    """docs/data.md, "Framing": a test spec's `framing=` is recorded, not applied."""
    heads = []
    for framing in ("as_given", "box:0.3"):
        spec = replicas.spec("folder", f"framing={framing},name={framing.replace(':', '')}")
        code, text = evaluate(capsys, tmp_path, checkpoints, spec)
        assert code == 0, text
        name = framing.replace(":", "")
        heads.append(json.loads((tmp_path / "eval" / f"{name}.json").read_text())["heads"])
    assert heads[0] == heads[1]


@pytest.mark.parametrize("adapter", ["folder", "rafdb", "fer2013"])
def test_eval_split_option_picks_the_split(replicas, capsys, tmp_path, checkpoints, adapter):
    code, text = evaluate(capsys, tmp_path, checkpoints, replicas.spec(adapter, "split=train,"
                                                                       "name=tr"))  # fmt: skip
    assert code == 0, text
    n = json.loads((tmp_path / "eval/tr.json").read_text())["heads"]["fused"]["overall"]["n"]
    root = replicas.root(adapter)
    assert n == len(create_dataset(adapter, root, "train")) != len(
        create_dataset(adapter, root, "test"))  # fmt: skip
