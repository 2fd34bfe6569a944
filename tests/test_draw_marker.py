"""Tests whose verdict rests on a training draw carry the `draw` marker (issue 18 item 1).

CPU training is deterministic on one kind of CPU and a different float draw on another (AMD EPYC
vs Intel Xeon, AVX2 vs AVX-512 kernels), so a test that judges what a run learned passes or
fails by the machine unless it asserts with wide margin. `make test` runs the `draw` tests a
second time under another instruction set (see the Makefile), which is only worth something if
every such test is marked. This check reads the test files with `ast` and flags a test that
orders (`<`, `>`, `<=`, `>=`) a learning outcome (an assert whose text or message names `loss`,
`acc`, `gain` or `agree`) in a module that trains (calls `fit`, or `main` with `train`, `demo`,
`compare` or `sweep`), unless it carries the marker. A heuristic: it catches the next recipe
smoke test or accuracy bar, not every possible one; comparisons with the literal 0 are bounds
that hold for any draw (a cross-entropy is positive) and are not flagged.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
OUTCOME = re.compile(r"loss|acc|gain|agree", re.I)
TRAINING_COMMANDS = {"train", "demo", "compare", "sweep"}
ORDER = (ast.Lt, ast.Gt, ast.LtE, ast.GtE)


def _trains(tree: ast.Module) -> bool:
    """Whether the module calls `fit(...)` or `main([<training command>, ...])` anywhere."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func).rsplit(".", 1)[-1]
        if name == "fit":
            return True
        if name == "main" and node.args and isinstance(node.args[0], ast.List) \
                and node.args[0].elts and isinstance(node.args[0].elts[0], ast.Constant) \
                and node.args[0].elts[0].value in TRAINING_COMMANDS:
            return True
    return False


def _orders_an_outcome(test: ast.FunctionDef) -> bool:
    for node in ast.walk(test):
        if not isinstance(node, ast.Assert):
            continue
        for cmp in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
            sides = [cmp.left, *cmp.comparators]
            if not any(isinstance(op, ORDER) for op in cmp.ops):
                continue
            if any(isinstance(s, ast.Constant) and s.value == 0 for s in sides):
                continue  # a bound any draw meets
            if OUTCOME.search(ast.unparse(node)):  # the message counts: `last < first, "loss"`
                return True
    return False


def _marked_draw(test: ast.FunctionDef, module: ast.Module) -> bool:
    marks = [ast.unparse(d) for d in test.decorator_list]
    marks += [ast.unparse(n.value) for n in module.body if isinstance(n, ast.Assign)
              and any(ast.unparse(t) == "pytestmark" for t in n.targets)]
    return any("mark.draw" in m for m in marks)


def unmarked_draw_tests(source: str, filename: str = "<test>") -> list[str]:
    """Names of the tests in `source` that judge a training outcome without the marker."""
    tree = ast.parse(source, filename=filename)
    if not _trains(tree):
        return []
    return [f"{filename}::{n.name}" for n in tree.body
            if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
            and _orders_an_outcome(n) and not _marked_draw(n, tree)]


def test_every_test_judging_a_training_run_is_marked_draw():
    found = [t for path in sorted(TESTS.glob("test_*.py"))
             for t in unmarked_draw_tests(path.read_text(), path.name)]
    assert found == [], "mark these @pytest.mark.draw (and give them margin): " + ", ".join(found)


def test_the_check_flags_an_unmarked_accuracy_bar():
    offender = '''
def test_learns(tmp_path):
    result = fit(cfg, tmp_path)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
'''
    assert unmarked_draw_tests(offender) == ["<test>::test_learns"]
    assert unmarked_draw_tests("@pytest.mark.draw" + offender) == []
    cli = offender.replace("fit(cfg, tmp_path)", 'main(["demo", "--quick"])')
    assert unmarked_draw_tests(cli.replace("train_loss", "val_accuracy")) == ["<test>::test_learns"]
    bound = offender.replace('< result.history[0]["train_loss"]', "> 0")
    assert unmarked_draw_tests(bound) == []  # positive cross-entropy: any draw
    assert unmarked_draw_tests(offender.replace("fit(cfg, tmp_path)", "load(cfg)")) == []
