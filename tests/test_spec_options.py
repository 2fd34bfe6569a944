"""Every documented data-spec option of every adapter (docs/data.md) through `fermixnet data
check` and `fermixnet eval`, in-process on tiny replicas (issue 18): exit 0, no traceback, and the
option's effect in the output; a bad value exits non-zero with one line naming the option and
what was expected. `eval`, `train` and `compare` (which read specs through the same
`create_dataset`) are in tests/test_data_spec_commands.py.

Replica per adapter (built once per module): the train and test splits hold one planted leak (a
test image whose pixels are also a train image; FED-RO has no other split), a twin root holds
one planted bad entry in the test split (for `skip_bad=1`), and `lists/` holds subset lists
under names the adapters do not look for (only the `*_list=` options attach them).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from data_replicas import (
    make_affectnet_csv,
    make_fedro,
    make_ferplus_csv,
    make_ferplus_folders,
    make_folder_tree,
    make_rafdb,
    write_corrupt,
    write_image,
)
from fermixnet.cli import main
from fermixnet.data import create_dataset
from fermixnet.data.duplicates import LEAKED_REASON

ADAPTERS = ("folder", "manifest", "rafdb", "ferplus", "fer2013", "affectnet", "fedro")
# Bad entry planted in each adapter's twin root, and the reason `skip_bad=1` counts it under.
BAD_REASON = {"folder": "undecodable image", "manifest": "missing file", "rafdb": "missing file",
              "ferplus": "missing file", "fer2013": "bad pixel count",
              "affectnet": "bad annotation", "fedro": "undecodable image"}  # fmt: skip
LEAKS = {"fedro": 0}  # planted leaks in the test split (default 1)


# --- replicas ---------------------------------------------------------------------------------


def _folder(root: Path, bad: bool) -> None:
    make_folder_tree(root, {"train": {"happy": 2, "sad": 2}, "test": {"happy": 1, "sad": 1}})
    shutil.copy(root / "train/happy/0.png", root / "test/sad/leak.png")
    if bad:
        write_corrupt(root / "test/happy/bad.png")


def _manifest(root: Path, bad: bool) -> None:
    rows = ["path,label,split,occlusion"]
    for i, (label, split, occ) in enumerate([("happy", "train", "none"), ("sad", "train", "none"),
                                             ("anger", "train", "none"), ("happy", "test", "upper"),
                                             ("sad", "test", "none"), ("happy", "train", "none"),
                                             ("sad", "train", "none")]):  # fmt: skip
        write_image(root / "img" / f"{i}.png", i)
        rows.append(f"img/{i}.png,{label},{split},{occ}")
    rows.append("img/0.png,sad,test,none")  # the leak: train image 0 again in test
    (root / "faces.csv").write_text("\n".join(rows[:2] + rows[4:5]) + "\n")  # file=faces.csv
    rows += ["img/missing.png,happy,test,none"] if bad else []
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")


def _rafdb(root: Path, bad: bool) -> None:
    make_rafdb(root, extra_lines="test_0099.jpg 3\n" if bad else "")
    aligned = root / "basic/Image/aligned"
    shutil.copy(aligned / "train_00001_aligned.jpg", aligned / "test_0006_aligned.jpg")
    short = root / "basic/EmoLabel/list_short.txt"  # for label_file=: the first 3 train lines
    short.write_text("".join((root / "basic/EmoLabel/list_patition_label.txt")
                             .read_text().splitlines(keepends=True)[:3]))  # fmt: skip


def _ferplus(root: Path, bad: bool) -> None:
    make_ferplus_csv(root)
    make_ferplus_folders(root)  # `layout=auto` reads these; `layout=csv` the CSV files
    shutil.copy(root / "FER2013Train/fer0000001.png", root / "FER2013Test/fer0000009.png")
    if bad:
        with open(root / "FER2013Test/label.csv", "a") as handle:
            handle.write('fer0000099.png,"(0, 0, 48, 48)",0,0,0,0,10,0,0,0,0,0\n')


def _fer2013(root: Path, bad: bool) -> None:
    rng = np.random.default_rng(0)
    pixels = [" ".join(map(str, rng.integers(0, 256, 48 * 48))) for _ in range(6)]
    rows = [(i % 7, pixels[i], "Training") for i in range(4)]
    rows += [(4, pixels[4], "PublicTest"), (5, pixels[5], "PrivateTest"),
             (6, pixels[0], "PrivateTest")]  # the leak: training row 0's pixels  # fmt: skip
    rows += [(0, "1 2 3", "PrivateTest")] if bad else []
    text = "emotion,pixels,Usage\n" + "".join(f"{e},{p},{u}\n" for e, p, u in rows)
    (root / "fer2013.csv").write_text(text)
    for split, classes in (("train", ("angry", "happy")), ("test", ("fear", "neutral", "sad"))):
        for k, name in enumerate(classes):  # the image-folder copy, for layout=folders
            write_image(root / split / name / f"{k}.png", 50 + k, (48, 48), "L")


def _affectnet(root: Path, bad: bool) -> None:
    make_affectnet_csv(root, codes_train=(0, 1, 7), codes_val=(6,))  # for layout=csv
    for split, seeds, codes in (("train_set", (0, 1, 2, 3, 4), (0, 0, 1, 2, 7)),
                                ("val_set", (10, 11, 0), (4, 5, 6))):  # seed 0: the leak
        (root / split / "annotations").mkdir(parents=True)
        for seed, code in zip(seeds, codes, strict=True):
            write_image(root / split / "images" / f"{seed}.jpg", seed, (16, 16))
            np.save(root / split / "annotations" / f"{seed}_exp.npy", np.array(str(code)))
    if bad:
        write_image(root / "val_set/images/99.jpg", 99, (16, 16))  # without an annotation


def _fedro(root: Path, bad: bool) -> None:
    make_fedro(root, per_class=1)
    if bad:
        write_corrupt(root / "FED-RO/anger/bad.jpg")


def _lists(lists: Path) -> None:
    """Subset lists under names no adapter looks for by itself."""
    lists.mkdir()
    (lists / "rafdb_occ.txt").write_text("test_0004_aligned 5 1\n")
    (lists / "rafdb_pose.txt").write_text("4/test_0001_aligned.jpg\n")
    (lists / "rafdb_pose2.txt").write_text("4/test_0001_aligned.jpg\n0/test_0004_aligned.jpg\n")
    (lists / "rafdb_types.txt").write_text("test_0002 UL\ntest_0003 C\n")
    (lists / "ferplus_occ.txt").write_text("4_fer0000008.png 4 0\n")
    (lists / "ferplus_pose.txt").write_text("6/fer0000009.jpg\n")
    (lists / "affectnet_occ.txt").write_text("val/4/10/\n")
    (lists / "affectnet_pose.txt").write_text("5/11.jpg\n")


BUILD: dict[str, Callable[[Path, bool], None]] = {
    "folder": _folder, "manifest": _manifest, "rafdb": _rafdb, "ferplus": _ferplus,
    "fer2013": _fer2013, "affectnet": _affectnet, "fedro": _fedro,
}  # fmt: skip


@dataclass
class Replicas:
    base: Path

    def root(self, adapter: str, bad: bool = False) -> Path:
        return self.base / ("bad" if bad else "ok") / adapter

    def spec(self, adapter: str, options: str = "", bad: bool = False) -> str:
        options = options.replace("LISTS", str(self.base / "lists"))
        return f"{adapter}:{self.root(adapter, bad)}" + (f",{options}" if options else "")

    @classmethod
    def build(cls, base: Path) -> Replicas:
        """Every adapter's replica and its twin with the planted bad entry, and ``lists/``."""
        r = cls(base)
        for adapter, build in BUILD.items():
            for bad in (False, True):
                r.root(adapter, bad).mkdir(parents=True)
                build(r.root(adapter, bad), bad)
        _lists(r.base / "lists")
        return r


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Replicas:
    return Replicas.build(tmp_path_factory.mktemp("spec_options"))


def check(capsys, spec: str, *extra: str) -> tuple[int, dict | str]:
    """`data check --json` in-process: (exit status, report or the error text)."""
    code = main(["data", "check", "--data", spec, "--json", *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, (json.loads(out) if out.strip().startswith("{") else err)


def splits(report: dict) -> dict[str, dict]:
    return {s["split"]: s for s in report["splits"]}


# --- what each option does, as `data check` shows it --------------------------------------------

Effect = Callable[[dict, dict, str], None]  # (report with the option, plain report, adapter)


def _named(got: dict, plain: dict, _: str) -> None:
    assert got["label"] == "mine" and plain["label"] == ""


def _test_of(report: dict) -> dict:
    """The test split of a report (AffectNet's plain check reads val, the same images)."""
    return splits(report).get("test") or splits(report)["val"]


def _split(report: dict, split: str) -> dict:
    return _test_of(report) if split == "test" else splits(report)[split]


def _test_only(got: dict, plain: dict, adapter: str) -> None:
    assert list(splits(got)) == ["test"] and (len(splits(plain)) > 1 or adapter == "fedro")
    assert splits(got)["test"]["images"] == _test_of(plain)["images"]


def _framed(got: dict, plain: dict, _: str) -> None:
    assert {s["framing"] for s in got["splits"]} == {"box:0.3"}
    assert {s["framing"] for s in plain["splits"]} != {"box:0.3"}


def _all_occluded(got: dict, _: dict, __: str) -> None:
    assert all(s["subsets"].get("occluded") == s["images"] > 0 for s in got["splits"])


def _leak_dropped(got: dict, plain: dict, adapter: str) -> None:
    leaks, test = LEAKS.get(adapter, 1), splits(got)["test"]
    assert test["images"] == _test_of(plain)["images"] - leaks
    assert test["skipped"].get(LEAKED_REASON, 0) == leaks
    assert any(n.startswith(f"exclude_leaked: {leaks} of") for n in test["notes"])


def _detected(got: dict, plain: dict, _: str) -> None:
    """Every sample that had only template points was detected or named as a miss; the ones
    with their own points were left alone."""
    for split, mine in splits(got).items():
        before, after = splits(plain)[split]["landmarks"], mine["landmarks"]
        assert after["real"] == before["real"], (split, after, before)
        assert after["detected"] + mine["undetected"] == before["template"], (split, mine)


COMMON: dict[str, Effect] = {"name=mine": _named, "split=test": _test_only,
                             "framing=box:0.3": _framed, "occluded=1": _all_occluded,
                             "split=test,exclude_leaked=1": _leak_dropped}  # fmt: skip
if importlib.util.find_spec("yuface") is not None:  # the test extra's detector
    COMMON["detect_landmarks=yunet"] = _detected
# only=<subset>: a subset of the test split each adapter has (with its options), and its size.
ONLY = {"folder": ("occluded=1", "occluded"), "fer2013": ("occluded=1", "occluded"),
        "manifest": ("", "occlusion=upper"), "rafdb": ("", "pose>30"), "fedro": ("", "occluded"),
        "ferplus": ("occlusion_list=LISTS/ferplus_occ.txt", "occluded"),
        "affectnet": ("pose30_list=LISTS/affectnet_pose.txt", "pose>30")}  # fmt: skip


def _per_class(split: str, **expect: Callable[[dict, dict], bool]) -> Effect:
    def effect(got: dict, plain: dict, _: str) -> None:
        g, p = _split(got, split)["per_class"], _split(plain, split)["per_class"]
        for what, ok in expect.items():
            assert ok(g, p), (what, g, p)

    return effect


def _field(split: str, key: str, ok: Callable[[object, object], bool]) -> Effect:
    def effect(got: dict, plain: dict, _: str) -> None:
        g, p = _split(got, split)[key], _split(plain, split).get(key)
        assert ok(g, p), (key, g, p)

    return effect


def _images(split: str, ok: Callable[[int, int], bool]) -> Effect:
    return _field(split, "images", ok)


def _subset(key: str, n: int) -> Effect:
    return _field("test", "subsets", lambda g, p: g.get(key) == n and p.get(key) != n)


EIGHT = _per_class("test", contempt=lambda g, p: "contempt" in g and "contempt" not in p)
SEVEN = _per_class("train", contempt=lambda g, p: "contempt" not in g and "contempt" in p)
OWN: dict[str, dict[str, Effect]] = {
    "folder": {"num_classes=8": EIGHT, "class_map=happy:sad": _per_class(
        "train", merged=lambda g, p: g["happy"] == 0 and g["sad"] == p["happy"] + p["sad"])},
    "manifest": {"num_classes=8": EIGHT, "file=faces.csv": _images("train", lambda g, p: g < p),
                 "class_map=happy:sad": _per_class("train", merged=lambda g, p: g["happy"] == 0)},
    "rafdb": {
        "images=original": _field("train", "sizes", lambda g, p: g == {"14x20": 8} != p),
        "split=train,label_file=ROOT/basic/EmoLabel/list_short.txt":
            _images("train", lambda g, p: g == 3 < p),
        "occlusion_list=LISTS/rafdb_occ.txt": _subset("occluded", 1),
        "pose30_list=LISTS/rafdb_pose.txt": _subset("pose>30", 1),
        "pose45_list=LISTS/rafdb_pose2.txt": _subset("pose>45", 2),
        "occlusion_type_list=LISTS/rafdb_types.txt": _subset("occlusion_type=UL", 1),
    },
    "ferplus": {
        "layout=csv": _field("train", "skipped", lambda g, p: "removed by FERPlus (no image "
                             "name)" in g and "removed by FERPlus (no image name)" not in p),
        "layout=folders": _field("train", "images", lambda g, p: g == p),
        "vote=majority": _images("train", lambda g, p: g < p),
        "tie=first": _images("train", lambda g, p: g == p + 1),
        "tie=random,seed=3": _images("train", lambda g, p: g == p + 1),
        "num_classes=7": SEVEN,
        "occlusion_list=LISTS/ferplus_occ.txt": _subset("occluded", 1),
        "pose30_list=LISTS/ferplus_pose.txt": _subset("pose>30", 1),
        "pose45_list=LISTS/ferplus_pose.txt": _subset("pose>45", 1),
    },
    "fer2013": {"layout=folders": _images("test", lambda g, p: g == 3 != p),
                "layout=csv": _images("test", lambda g, p: g == p)},
    "affectnet": {
        "num_classes=8": _per_class("train", contempt=lambda g, p: g.get("contempt") == 1),
        "layout=csv": _images("train", lambda g, p: g == 2 != p),
        "layout=npy": _images("train", lambda g, p: g == p),
        "balance=downsample": _per_class("train", balanced=lambda g, p: set(g.values()) == {0, 1}
                                         and max(p.values()) == 2),
        "balance=downsample,max_per_class=2,seed=4": _images("train", lambda g, p: g == p),
        "occlusion_list=LISTS/affectnet_occ.txt": _subset("occluded", 1),
        "pose30_list=LISTS/affectnet_pose.txt": _subset("pose>30", 1),
        "pose45_list=LISTS/affectnet_pose.txt": _subset("pose>45", 1),
    },
    "fedro": {},
}
GOOD = [(a, o) for a in ADAPTERS for o in COMMON] + [
    (a, o) for a in ADAPTERS for o in OWN[a]]  # fmt: skip


def _options(replicas: Replicas, adapter: str, option: str) -> str:
    return option.replace("ROOT", str(replicas.root(adapter)))


_PLAIN: dict[str, dict] = {}  # each adapter's report without options, made once


def plain_report(capsys, replicas: Replicas, adapter: str) -> dict:
    if adapter not in _PLAIN:
        code, _PLAIN[adapter] = check(capsys, replicas.spec(adapter))
        assert code == 0, _PLAIN[adapter]
    return _PLAIN[adapter]


@pytest.mark.parametrize("adapter, option", GOOD, ids=[f"{a}-{o}" for a, o in GOOD])
def test_data_check_option_has_its_effect(replicas, capsys, adapter, option):
    plain = plain_report(capsys, replicas, adapter)
    code, got = check(capsys, replicas.spec(adapter, _options(replicas, adapter, option)))
    assert code == 0, got
    effect = COMMON.get(option) or OWN[adapter][option]
    effect(got, plain, adapter)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_only_keeps_one_subset(replicas, capsys, adapter):
    needs, key = ONLY[adapter]
    base = ",".join(filter(None, ["split=test", needs]))
    _, plain = check(capsys, replicas.spec(adapter, base))
    code, got = check(capsys, replicas.spec(adapter, f"{base},only={key}"))
    assert code == 0, got
    test, before = splits(got)["test"], splits(plain)["test"]
    assert test["images"] == before["subsets"][key] == test["subsets"][key] > 0


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_skip_bad_counts_the_planted_bad_entry(replicas, capsys, adapter):
    code, strict = check(capsys, replicas.spec(adapter, "split=test", bad=True))
    assert code == 1
    code, lenient = check(capsys, replicas.spec(adapter, "split=test,skip_bad=1", bad=True))
    assert code == 0, lenient
    assert splits(lenient)["test"]["skipped"][BAD_REASON[adapter]] == 1
    assert splits(lenient)["test"]["skip_bad"] and not splits(strict)["test"]["skip_bad"]


# --- bad values -------------------------------------------------------------------------------

# (adapters, option, words the one-line error must hold: the option and what was expected)
BAD_COMMON = [("name=", ["name=''", "non-empty label"]),
              ("split=later", ["split must be one of", "'later'"]),
              ("framing=wide", ["framing='wide'", "expected template, box"]),
              ("occluded=maybe", ["occluded='maybe'", "expected true/false"]),
              ("exclude_leaked=2", ["exclude_leaked='2'", "expected true/false"]),
              ("skip_bad=maybe", ["skip_bad='maybe'", "expected true/false"]),
              ("only=nope", ["only='nope'", "matches no samples"]),
              ("detect_landmarks=nope", ["detect_landmarks=nope", "'nope' is unknown"]),
              ("detect_landmarks=aligned", ["detect_landmarks=aligned", "no landmarks"]),
              ("colour=red", ["unknown option(s) colour", "accepted:", "skip_bad"])]  # fmt: skip
BAD_OWN = [
    (("folder", "manifest"), "num_classes=9", ["num_classes='9'", "expected one of 7, 8, auto"]),
    (("ferplus", "affectnet"), "num_classes=6", ["num_classes='6'", "expected one of 7, 8"]),
    (("folder", "manifest"), "class_map=happy", ["class_map entry 'happy'", "source:target"]),
    (("folder", "manifest"), "class_map=happy:smile", ["class_map entry happy:smile",
                                                       "unknown expression label 'smile'"]),
    (("manifest",), "file=none.csv", ["file=none.csv", "not found"]),
    (("rafdb",), "images=raw", ["images='raw'", "expected one of aligned, original"]),
    (("rafdb",), "label_file=/no/list.txt", ["label_file /no/list.txt not found"]),
    (("rafdb", "ferplus", "affectnet"), "occlusion_list=/no/occ.txt",
     ["occlusion_list=/no/occ.txt", "not found"]),
    (("rafdb", "ferplus", "affectnet"), "pose30_list=/no/p.txt", ["pose30_list=/no/p.txt"]),
    (("rafdb", "ferplus", "affectnet"), "pose45_list=/no/p.txt", ["pose45_list=/no/p.txt"]),
    (("rafdb",), "occlusion_type_list=/no/t.txt", ["occlusion_type_list=/no/t.txt"]),
    (("ferplus",), "layout=zip", ["layout='zip'", "expected one of auto, csv, folders"]),
    (("fer2013",), "layout=zip", ["layout='zip'", "expected one of auto, csv, folders"]),
    (("affectnet",), "layout=zip", ["layout='zip'", "expected one of auto, csv, npy"]),
    (("ferplus",), "vote=min", ["vote='min'", "expected one of max, majority"]),
    (("ferplus",), "tie=coin", ["tie='coin'", "expected one of drop, first, random"]),
    (("ferplus", "affectnet"), "seed=x", ["seed='x'", "expected an integer"]),
    (("affectnet",), "balance=up", ["balance='up'", "expected one of none, downsample"]),
    (("affectnet",), "max_per_class=many", ["max_per_class='many'", "expected an integer"]),
    (("affectnet",), "balance=downsample,max_per_class=0", ["max_per_class must be at least 1"]),
]
BAD = [(a, o, w) for a in ADAPTERS for o, w in BAD_COMMON] + [
    (a, o, w) for adapters, o, w in BAD_OWN for a in adapters]  # fmt: skip


def run(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


@pytest.mark.parametrize("adapter, option, words", BAD, ids=[f"{a}-{o}" for a, o, _ in BAD])
def test_data_check_refuses_a_bad_value(replicas, capsys, adapter, option, words):
    code, text = run(capsys, ["data", "check", "--data", replicas.spec(adapter, option)])
    assert code != 0
    assert all(w in text for w in words), text


def test_data_check_split_option_and_split_flag_must_agree(replicas, capsys):
    spec = replicas.spec("folder", "split=test")
    code, report = check(capsys, spec, "--split", "test")
    assert code == 0 and list(splits(report)) == ["test"]
    code, text = run(capsys, ["data", "check", "--data", spec, "--split", "train"])
    assert code == 2 and "--split train conflicts with the spec's split=test" in text


def test_data_cache_reads_the_spec_split(replicas, capsys, tmp_path):
    """docs/data.md: a spec's `split=` wins over `data cache --split` (default train)."""
    code, text = run(capsys, ["data", "cache", "--data", replicas.spec("folder", "split=test"),
                              "--size", "16", "--cache-dir", str(tmp_path)])  # fmt: skip
    test = len(create_dataset("folder", replicas.root("folder"), "test"))
    assert code == 0 and "folder-test-" in text and f": {test} images 16x16" in text, text
