"""The top-level API (`fermixnet.create_model`, ...): every public name resolves lazily, and
`import fermixnet` alone stays light (no torch)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import fermixnet


def test_import_fermixnet_does_not_import_torch():
    code = "import sys, fermixnet; print(fermixnet.__version__, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [fermixnet.__version__, "False"]


def test_all_lists_exactly_the_lazy_names():
    assert sorted(fermixnet.__all__) == sorted(["__version__", *fermixnet._LAZY])
    assert set(fermixnet.__all__) <= set(dir(fermixnet))


@pytest.mark.parametrize("name", sorted(n for n in fermixnet.__all__ if n != "__version__"))
def test_each_public_name_is_its_owner_modules_object(name):
    import importlib

    owner = importlib.import_module(fermixnet._LAZY[name])
    assert getattr(fermixnet, name) is getattr(owner, name)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fermixnet.nope  # noqa: B018


def test_top_level_names_work_together(tmp_path):
    model = fermixnet.create_model("resnet18", num_classes=7, mid_branch=True)
    fermixnet.save_checkpoint(model, tmp_path / "ck", {"input_size": 32})
    loaded, meta = fermixnet.load_checkpoint(tmp_path / "ck")
    assert isinstance(loaded, fermixnet.FERMixNet) and meta["num_classes"] == 7
    assert isinstance(fermixnet.CoTrainingLoss(0.5, 0.5), fermixnet.CoTrainingLoss)
