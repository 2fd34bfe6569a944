"""End to end through the CLI on generated images: train, SIGKILL + resume (bit-identical to an
uninterrupted run), a hook-simulated kill, NaN stop, eval per subset and head, report, errors."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fermixnet.cli import main
from fermixnet.config import load_config
from fermixnet.engine import TrainingDivergedError, fit
from fermixnet.engine.checkpoint import load_train_state
from fermixnet.engine.checkpoint import recover as _recover

SRC = str(Path(__file__).resolve().parents[1] / "src")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def straight(tmp_path_factory, make_manifest, tiny_config):
    """An uninterrupted 3-epoch run through the CLI (shared by the tests below)."""
    tmp = tmp_path_factory.mktemp("e2e")
    root = make_manifest(tmp / "data", per_class=4, test_per_class=2)
    cfg = tiny_config(tmp, root)
    assert main(["train", "--config", str(cfg), "--out", str(tmp / "straight")]) == 0
    return tmp, root, cfg, tmp / "straight"


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last" / "model.safetensors"))


def _assert_same_final_state(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    ha = json.loads((a / "metrics.json").read_text())["history"]
    hb = json.loads((b / "metrics.json").read_text())["history"]
    strip = ("images_per_s", "time_s")
    assert [{k: v for k, v in h.items() if k not in strip} for h in ha] == \
           [{k: v for k, v in h.items() if k not in strip} for h in hb]


@pytest.mark.slow
def test_run_folder_contents(straight):
    _, _, _, run = straight
    for name in ("config.yaml", "metrics.csv", "metrics.json", "plots/mix_samples.png",
                 "eval/data-last.json", "eval/data-best.json",
                 "checkpoints/last/model.safetensors", "checkpoints/best/meta.json"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "complete" and len(metrics["history"]) == 3
    assert [h["lr"] for h in metrics["history"]] == pytest.approx([0.02, 0.01, 0.005])
    best = metrics["best_epoch"]
    assert metrics["best_val"] == max(h["val_accuracy"] for h in metrics["history"])
    assert metrics["history"][best - 1]["val_accuracy"] == metrics["best_val"]
    assert load_train_state(run / "checkpoints" / "best")["epoch"] == best
    assert len((run / "metrics.csv").read_text().strip().splitlines()) == 4


@pytest.mark.slow
def test_sigkill_then_resume_reaches_the_same_weights(straight):
    tmp, _, cfg, ref = straight
    run = tmp / "killed"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fermixnet.cli", "train", "--config",
                             str(cfg), "--out", str(run)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "last" / "train_state.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before the kill"
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside epoch 2 (training, validation or checkpoint writing)
    proc.send_signal(signal.SIGKILL)
    # The kill landed mid-run: on a fast machine the run could otherwise end first, untested.
    assert proc.wait() == -signal.SIGKILL
    state = run / "checkpoints" / "last"
    assert _recover(state.parent, "last") and load_train_state(state)["epoch"] < 3
    assert not (run / "metrics.json").is_file() or \
        json.loads((run / "metrics.json").read_text())["status"] != "complete"
    assert main(["train", "--resume", str(run)]) == 0
    _assert_same_final_state(ref, run)


@pytest.mark.slow
def test_on_device_data_path_trains_and_resumes_bit_identically(straight):
    tmp, _, cfg, _ = straight
    on_device = ["data.on_device=true", "aug.crop_padding_mode=reflect"]
    ref = fit(load_config(cfg, on_device), tmp / "dev_ref")
    assert len(ref.history) == 3 and all(h["train_loss"] > 0 for h in ref.history)

    def kill(info):
        if info.global_step == 3:  # inside epoch 2
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(load_config(cfg, on_device), tmp / "dev_killed", hook=kill)
    fit(load_config(cfg, on_device), tmp / "dev_killed", resume=True)
    _assert_same_final_state(tmp / "dev_ref", tmp / "dev_killed")
    with pytest.raises(ValueError, match=r"data\.on_device"):
        fit(load_config(cfg, [*on_device, "aug.preset=flip_affine"]), tmp / "dev_affine")


def test_resume_refuses_a_per_epoch_scheduler_state_from_older_versions(straight, capsys):
    import shutil

    from fermixnet.engine.checkpoint import STATE_FILE, atomic_torch_save

    tmp, _, _, ref = straight
    old = tmp / "old_version"
    shutil.copytree(ref, old)
    last = old / "checkpoints" / "last"
    state = load_train_state(last)
    state["scheduler"] = {"step_size": 1, "gamma": 0.5, "base_lrs": [0.02], "last_epoch": 3}
    atomic_torch_save(state, last / STATE_FILE)
    assert main(["train", "--resume", str(old)]) == 2
    err = capsys.readouterr().err
    assert "older fermixnet" in err and f"{last}/model.safetensors" in err


@pytest.mark.slow
def test_hook_kill_mid_epoch_then_resume(straight):
    tmp, _, cfg, ref = straight
    run = tmp / "hooked"

    def kill(info):
        if info.global_step == 5:  # first step of epoch 3
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(load_config(cfg), run, hook=kill)
    assert load_train_state(run / "checkpoints" / "last")["epoch"] == 2
    with pytest.raises(ValueError, match="--resume"):
        fit(load_config(cfg), run)
    assert main(["train", "--resume", str(run)]) == 0
    _assert_same_final_state(ref, run)


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(straight):
    tmp, _, cfg, _ = straight
    run = tmp / "nan"

    def poison(info):
        if info.global_step == 3:
            with torch.no_grad():
                next(info.model.parameters()).fill_(float("nan"))

    with pytest.raises(TrainingDivergedError, match="epoch 2"):
        fit(load_config(cfg), run, hook=poison)
    state = load_train_state(run / "checkpoints" / "last")
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in _weights(run).values())


@pytest.mark.slow
def test_non_finite_weights_after_a_finite_loss_are_never_checkpointed(straight):
    """Item 9 of issue 11: an inf gradient on the LAST step of epoch 2 leaves the loss finite but
    the weights NaN/inf; the run stops like the loss guard and keeps both epoch-1 checkpoints."""
    tmp, _, cfg, _ = straight
    run = tmp / "inf_grad"
    ckpts = run / "checkpoints"
    seen: dict[str, object] = {}

    def poison(info):
        if info.global_step == 3:  # epoch 1 (2 steps) is saved; step 4 ends epoch 2
            seen["files"] = {n: (ckpts / n / "model.safetensors").read_bytes()
                             for n in ("last", "best")}
            param = next(info.model.parameters())
            param.register_hook(lambda g: torch.full_like(g, float("inf")))
        if info.global_step == 4:
            seen["loss"] = float(info.loss)
            seen["weights_finite"] = all(bool(p.isfinite().all())
                                         for p in info.model.parameters())

    with pytest.raises(TrainingDivergedError, match=r"epoch 2.*not overwritten"):
        fit(load_config(cfg), run, hook=poison)
    assert math.isfinite(seen["loss"]) and not seen["weights_finite"]  # the case guarded here
    for name in ("last", "best"):
        assert (ckpts / name / "model.safetensors").read_bytes() == seen["files"][name], name
        assert load_train_state(ckpts / name)["epoch"] == 1, name
    assert not list(ckpts.glob(".*"))  # no half-written temporary left behind


@pytest.mark.slow
def test_eval_reports_heads_and_subsets(straight, tmp_path):
    _, root, _, run = straight
    assert main(["eval", "--checkpoint", str(run), "--data", f"manifest:{root}", "--out",
                 str(tmp_path), "--cache-dir", str(tmp_path / "cache"), "--workers", "0"]) == 0
    res = json.loads((tmp_path / "eval" / "data.json").read_text())
    assert set(res["heads"]) == {"fused", "high", "mid"}
    fused = res["heads"]["fused"]
    assert fused["overall"]["n"] == 14 and sum(map(sum, fused["overall"]["confusion"])) == 14
    assert {"occluded", "occlusion=upper", "occluder=mask"} <= set(fused["subsets"])
    occluded = fused["subsets"]["occluded"]
    assert occluded["n"] == sum(1 for c in range(7) for k in range(2) if (c + k) % 6)
    # The checkpoint evaluated is the best-by-validation one; it matches fit's own result.
    best = json.loads((run / "eval" / "data-best.json").read_text())
    assert best["heads"]["fused"]["overall"]["accuracy"] == fused["overall"]["accuracy"]


@pytest.mark.slow
def test_report_side_by_side(straight, tmp_path):
    tmp, _, _, run = straight
    other = tmp / "hooked" if (tmp / "hooked" / "metrics.json").is_file() else run
    assert main(["report", str(run), str(other), "--out", str(tmp_path), "--names", "a", "b"]) == 0
    md = (tmp_path / "report.md").read_text()
    acc = json.loads((run / "metrics.json").read_text())["test"]["data"]["last"]["accuracy"]
    assert "| metric | a | b |" in md and f"{100 * acc:.2f}" in md
    rows = list(csv.reader((tmp_path / "report.csv").open()))
    assert ["a", "data", "accuracy (last epoch, fused)", str(acc)] in rows
    assert {r[0] for r in rows[1:]} == {"a", "b"}
    for png in ("curves.png", "confusion_a_data.png", "subsets_data.png",
                "mix_samples_a.png"):
        assert (tmp_path / "plots" / png).is_file(), png


def test_cli_errors_name_the_problem(tmp_path, capsys, make_manifest, tiny_config):
    root = make_manifest(tmp_path / "data", per_class=1, test_per_class=1)
    cfg = tiny_config(tmp_path, root)
    out = str(tmp_path / "run")
    assert main(["train", "--config", str(cfg), "--out", out, "--set", "train.epoch=2"]) == 2
    assert "did you mean 'train.epochs'" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "--out", out, "--set", "mix.p_mix=2"]) == 2
    assert "--set mix.p_mix=" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "--out", out,
                 "--set", f"data.train=manifest:{tmp_path / 'missing'}"]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    # A 7-class checkpoint evaluated on 8-class data.
    from fermixnet.models import create_model
    from fermixnet.models.weights import save_checkpoint

    save_checkpoint(create_model("resnet18", num_classes=7), tmp_path / "ck", {"input_size": 32})
    eight = make_manifest(tmp_path / "eight", per_class=1, test_per_class=1, classes=8)
    assert main(["eval", "--checkpoint", str(tmp_path / "ck"), "--data", f"manifest:{eight}",
                 "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "trained on classes" in capsys.readouterr().err
