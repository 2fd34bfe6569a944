"""Model selection (issue 11 item 12): validation never sees test data, the best checkpoint is
the best on validation, and the test set is reported for `last` and `best` as they are.

Validation and test are made to disagree on the best epoch: the accuracy that `evaluate`
returns is scripted per epoch (validation prefers epoch 2, the test set epoch 3), keyed by the
weights being evaluated, so selecting or reporting on the test set cannot pass unnoticed.
"""

from __future__ import annotations

import importlib
import json

import pytest
import torch

from fermixnet.config import load_config
from fermixnet.engine import fit
from fermixnet.engine.checkpoint import load_train_state

# the module, not the `evaluate` function that fermixnet.engine re-exports under that name
evaluate_module = importlib.import_module("fermixnet.engine.evaluate")
VAL_ACC = {1: 0.2, 2: 0.9, 3: 0.5}  # validation picks epoch 2
TEST_ACC = {1: 0.6, 2: 0.3, 3: 0.7}  # the test set would pick epoch 3 (the last)

pytestmark = pytest.mark.usefixtures("one_thread")


def _fingerprint(model: torch.nn.Module) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters()))


@pytest.fixture
def scripted_evaluate(monkeypatch):
    """Wraps `predict` (sees the weights) and `compute_eval_result` (sees the set's name) so
    that each evaluation reports the scripted accuracy of the epoch whose weights it used."""
    calls: list[dict] = []
    epoch_of: dict[float, int] = {}
    current: dict[str, float] = {}
    real_predict, real_compute = evaluate_module.predict, evaluate_module.compute_eval_result

    def predict(model, loader, **kw):
        current["weights"] = _fingerprint(model)
        return real_predict(model, loader, **kw)

    def compute(dataset, logits, labels, classes, subsets=None):
        res = real_compute(dataset, logits, labels, classes, subsets)
        if dataset == "val":
            epoch = len([c for c in calls if c["dataset"] == "val"]) + 1
            epoch_of[current["weights"]] = epoch
            acc = VAL_ACC[epoch]
        else:
            epoch = epoch_of[current["weights"]]  # KeyError: weights validation never saw
            acc = TEST_ACC[epoch]
        res.heads["fused"]["overall"]["accuracy"] = acc
        calls.append({"dataset": dataset, "n": int(labels.numel()), "epoch": epoch})
        return res

    monkeypatch.setattr(evaluate_module, "predict", predict)
    monkeypatch.setattr(evaluate_module, "compute_eval_result", compute)
    return calls


def test_best_is_chosen_on_validation_and_test_reports_last_and_best(
    tmp_path, make_manifest, tiny_config, scripted_evaluate
):
    root = make_manifest(tmp_path / "data", per_class=4, test_per_class=2)
    cfg = load_config(tiny_config(tmp_path, root), ["train.log_every=100"])
    result = fit(cfg, tmp_path / "run")
    calls = scripted_evaluate
    val_calls = [c for c in calls if c["dataset"] == "val"]
    test_calls = [c for c in calls if c["dataset"] != "val"]
    # Validation ran once per epoch on the 7 held-out training images, never on the 14 test ones.
    assert [c["n"] for c in val_calls] == [7, 7, 7]
    assert {c["n"] for c in test_calls} == {14}
    # The best epoch is validation's (2), not the test set's (3).
    assert result.best_epoch == 2
    run = tmp_path / "run"
    assert load_train_state(run / "checkpoints" / "best")["epoch"] == 2
    assert sorted(c["epoch"] for c in test_calls) == [2, 3]  # best and last, each once
    # Each is reported as measured: `best` is epoch 2's 0.3 although `last` scored 0.7.
    test = result.test["data"]  # named by its root folder
    assert (test["last"].accuracy(), test["best"].accuracy()) == (0.7, 0.3)
    summary = json.loads((run / "metrics.json").read_text())["test"]["data"]
    assert (summary["last"]["accuracy"], summary["best"]["accuracy"]) == (0.7, 0.3)
    for which, acc in (("last", 0.7), ("best", 0.3)):
        saved = json.loads((run / "eval" / f"data-{which}.json").read_text())
        assert saved["heads"]["fused"]["overall"]["accuracy"] == acc
