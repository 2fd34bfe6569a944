"""The package's import structure (shared DESIGN.md, "Layout"; issue 12 "Layering").

Lower layers never import upper ones: cli > demo, serve, explain > engine, inference > config,
report, models, data, synth > augment, losses, labels, fileio, progress, framing, run_layout.
Imports inside one layer are allowed, but the modules' import-time graph has no cycle, and the
engine's modules form no cycle even through imports deferred into functions. Imports are read
from the source with `ast` (every `import` statement, also those inside functions and under
TYPE_CHECKING), so nothing is imported to check them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fermixnet

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "fermixnet"
# Top to bottom; the first component below `fermixnet.` names the area.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("demo", "serve", "explain"),
    ("engine", "inference"),
    ("config", "config_types", "config_yaml", "report", "models", "data", "synth"),
    ("augment", "losses", "labels", "fileio", "progress", "framing", "run_layout"),
)
RANK = {area: len(LAYERS) - i for i, areas in enumerate(LAYERS) for area in areas}


def module_name(path: Path, src: Path = SRC) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, src: Path = SRC) -> list[tuple[str, int, bool]]:
    """(imported fermixnet module, line, at import time) for each import in `path` under `src`.

    `from a import b` counts as importing `a.b` when that is a module, else `a`; a public name
    of the package root (`from fermixnet import Predictor`, resolved lazily) counts as importing
    the module that owns it. An import is at import time when it is not inside a function and
    not under `if TYPE_CHECKING:`.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    lazy: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            deferred = node.body
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            deferred = node.body  # the else branch runs at import time
        else:
            continue
        lazy.update(id(n) for stmt in deferred for n in ast.walk(stmt))
    here = module_name(path, src).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(
                [*package[: len(package) - node.level + 1], node.module or ""]
                if node.level
                else [node.module or ""]
            ).strip(".")
            names = [_owner(base, a.name, src) for a in node.names]
        out += [
            (n, node.lineno, id(node) not in lazy)
            for n in names
            if n == "fermixnet" or n.startswith("fermixnet.")
        ]
    return out


def _owner(base: str, name: str, src: Path) -> str:
    """The module that `from base import name` loads the name from."""
    path = src.joinpath(*base.split("."), name)
    if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
        return f"{base}.{name}"
    return fermixnet._LAZY.get(name, base) if base == "fermixnet" else base


def area(module: str) -> str | None:
    """The area (`engine`, `labels`, ...) of a fermixnet module; None for the package root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_area_has_a_layer():
    areas = {area(module_name(p)) for p in sources()} - {None}
    assert areas <= set(RANK), f"add {sorted(areas - set(RANK))} to LAYERS (DESIGN.md's layering)"


def upward_imports(files: list[Path], src: Path = SRC) -> list[str]:
    """'file:line: area imports module' for each import of a higher layer's module.

    The package root is the public facade over every layer; importing it (for `__version__`)
    is allowed, as at import time it imports nothing (its public names resolve lazily).
    """
    found = []
    for path in files:
        mine = area(module_name(path, src))
        if mine is None:
            continue
        for target, line, _ in imports(path, src):
            theirs = area(target)
            if theirs is not None and RANK.get(theirs, 99) > RANK.get(mine, 0):
                found.append(f"{path.relative_to(src)}:{line}: {mine} imports {target}")
    return found


def test_lower_layers_never_import_upper_ones():
    assert upward_imports(sources()) == []


def import_cycles(files: list[Path], src: Path = SRC, deferred: bool = False) -> list[list[str]]:
    """Cycles of the import-time graph (module -> the fermixnet modules it imports on load);
    with `deferred`, of the graph of every import, also those inside functions."""
    graph = {module_name(p, src): {t for t, _, eager in imports(p, src) if eager or deferred}
             for p in files}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles


def test_no_import_cycle():
    # A package's __init__ re-exporting its submodules is the usual shape, not a cycle: a
    # submodule importing its own package's __init__ would be, and is reported.
    assert import_cycles(sources()) == []


def test_no_engine_cycle_even_through_deferred_imports():
    """An import deferred into a function hides a cycle from the import-time check, not from a
    reader: the engine's modules (the sweep's among them) import each other one way only."""
    engine = sorted((PACKAGE / "engine").glob("*.py"))
    assert import_cycles(engine, deferred=True) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from fermixnet.engine import fit\n", ["labels imports fermixnet.engine"]),
        ("def f():\n    from fermixnet.cli import main\n", ["labels imports fermixnet.cli"]),
        ("from fermixnet import Predictor\n", ["labels imports fermixnet.inference"]),
        ("from fermixnet import __version__, fileio\n", []),
    ],
)
def test_an_upward_import_is_found(tmp_path, source, expected):
    """The checker itself: a bottom-layer file importing the engine, the CLI or a lazily
    resolved public name of an upper layer is reported."""
    fake = tmp_path / "fermixnet" / "labels.py"
    fake.parent.mkdir()
    (tmp_path / "fermixnet" / "fileio.py").write_text("")
    fake.write_text(source)
    found = upward_imports([fake], tmp_path)
    assert [f.split(": ", 1)[1] for f in found] == expected


@pytest.mark.parametrize(
    "framing_source, cycle",
    [
        ("import fermixnet.progress\n", True),
        ("def f():\n    import fermixnet.progress\n", False),
        ("if TYPE_CHECKING:\n    import fermixnet.progress\n", False),
        ("if TYPE_CHECKING:\n    pass\nelse:\n    import fermixnet.progress\n", True),
    ],
)
def test_an_import_cycle_is_found(tmp_path, framing_source, cycle):
    """The checker itself: only imports that run when the module loads can close a cycle."""
    package = tmp_path / "fermixnet"
    package.mkdir()
    (package / "progress.py").write_text("from fermixnet import framing\n")
    (package / "framing.py").write_text(framing_source)
    found = import_cycles(sorted(package.glob("*.py")), tmp_path)
    assert bool(found) == cycle, found
    assert import_cycles(sorted(package.glob("*.py")), tmp_path, deferred=True), \
        "every variant is a cycle once deferred imports count"
