"""What a newcomer reads is what the project does.

The README's Python example and its cheap shell commands run as written with the venv's
`fermixnet`; its set-up commands are what CI runs; every `fermixnet` command that the README and
docs/*.md show parses with the real argument parser; and every repository path, test, module,
extra and make target they name exists.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from data_replicas import make_rafdb
from fermixnet.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = {p.relative_to(ROOT).as_posix(): p.read_text()
        for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}

# `tests/x.py::name`, `src/...`, `configs/...`, ... anywhere in the text, backticked or not.
PATH_RE = re.compile(
    r"(?<![\w./-])((?:src|configs|benchmarks|tests|docs|scratch|\.ci)/[\w./*-]*[\w*/])(?:::(\w+))?")
# Files the docs name as outputs of a command, not as files of the repository.
WRITTEN_BY_COMMANDS = {"benchmarks/results.json"}  # `make bench`
# README commands run by `test_readme_cheap_commands_run_as_written` (first words); the others
# train, serve or need a checkpoint or real data, and are only parsed.
CHEAP = ("fermixnet --help", "fermixnet info", "fermixnet data check", "fermixnet data occlude")


def _blocks(text: str, langs: str) -> list[str]:
    """The fenced blocks whose language is one of `langs` ("bash|sh"; "" is a plain block)."""
    blocks, lang, lines = [], None, []
    for line in text.splitlines():
        if not line.startswith("```"):
            lines.append(line)
        elif lang is None:
            lang, lines = line[3:].strip(), []
        else:
            if lang in langs.split("|"):
                blocks.append("\n".join(lines) + "\n")
            lang = None
    return blocks


def _shell_lines(block: str) -> list[str]:
    """Commands of a shell block: continuations joined, comments and pipes cut off."""
    block = re.sub(r"\\\n\s*", " ", block)
    lines = (re.sub(r"\s+#.*$", "", line).split(" | ")[0].strip() for line in block.splitlines())
    return [line for line in lines if line]


def _cli_lines(text: str) -> list[str]:
    """Every `fermixnet ...` (or `... -m fermixnet.cli ...`) line of the shell blocks and of the
    plain blocks (usage synopses, `$ fermixnet ...` sessions; an indented line continues the
    synopsis above it)."""
    lines = [line for block in _blocks(text, "bash|sh") for line in _shell_lines(block)]
    for block in _blocks(text, "|console"):
        joined = re.sub(r"\\\n\s*|\n[ \t]+(?=\[)", " ", block)
        lines += [re.sub(r"^\$ |\s+#.*$", "", line.strip()) for line in joined.splitlines()]
    lines = [re.sub(r"^.*-m fermixnet\.cli ", "fermixnet ", line) for line in lines]  # torchrun
    return [line for line in lines if line.startswith("fermixnet ")]


def _variants(line: str) -> list[str]:
    """A synopsis as concrete commands: without its optional `[--...]` groups, then with each
    group, each `a|b` choice taken in turn; `INPUT...` becomes `INPUT`, a one-letter number
    placeholder (`--stride N`) 1."""
    groups = re.findall(r"(?<=\s)\[(-[^\[\]]*)\]", line)
    base = re.sub(r"\s\[-[^\[\]]*\]", "", line)
    out = []
    for text in [base] + [f"{base} {g}" for g in groups]:
        tokens = ["1" if re.fullmatch("[A-Z]", t) else t.removesuffix("...")
                  for t in text.split() if t != "..."]
        choices = [(i, t.split("|")) for i, t in enumerate(tokens) if "|" in t]
        first = [t.split("|")[0] for t in tokens]
        out.append(" ".join(first))
        for i, alternatives in choices:
            for alt in alternatives[1:]:
                out.append(" ".join([*first[:i], alt, *first[i + 1:]]))
    return out


def _fermixnet() -> list[str]:
    """The venv's console script (what the README's commands call), else the module."""
    script = Path(sys.executable).parent / "fermixnet"
    return [str(script)] if script.exists() else [sys.executable, "-m", "fermixnet.cli"]


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["loss"].requires_grad and namespace["prediction"].shape == (8,)


def test_readme_starts_with_the_two_setup_commands_and_ci_runs_the_test_one():
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == "make test"


def test_readme_tells_to_activate_the_venv_before_its_bare_commands():
    """`make demo` puts `fermixnet` in .venv/bin, not on PATH: the README must say
    `source .venv/bin/activate` before the first bare `fermixnet` command."""
    activate = README.index("source .venv/bin/activate")
    first_bare = min(m.start() for m in re.finditer(r"^fermixnet ", README, flags=re.M))
    assert activate < first_bare
    for doc, text in DOCS.items():  # pip installs go into the venv, never to the system's pip
        for block in _blocks(text, "bash|sh"):
            for line in _shell_lines(block):
                assert not line.startswith(("pip ", "python -m pip")), f"{doc}: {line}"


def _readme_commands() -> list[str]:
    """README shell commands and inline `fermixnet ...` code, `[--flag]` expanded both ways."""
    lines = [line for block in _blocks(README, "bash") for line in _shell_lines(block)]
    lines += re.findall(r"`(fermixnet [^`]+)`", README.replace("\n", " "))
    return [v for line in lines for v in (_variants(line) if "[-" in line else [line])]


def _replicas(tmp_path: Path, make_fer2013_csv) -> dict[str, Path]:
    """Generated stand-ins for the data folders the README's commands name."""
    return {"/data/fer2013": make_fer2013_csv(tmp_path / "fer2013", {
                "Training": 14, "PublicTest": 7, "PrivateTest": 7}).parent,
            "/data/RAF-DB": make_rafdb(tmp_path / "RAF-DB")}


def test_readme_cheap_commands_run_as_written(tmp_path: Path, make_fer2013_csv):
    """Each cheap README command runs with the venv's `fermixnet` (data roots replaced by
    generated replicas) and says what the README says it does."""
    replicas, ran = _replicas(tmp_path, make_fer2013_csv), []
    for command in dict.fromkeys(_readme_commands()):
        if not command.startswith(CHEAP):
            continue
        for root, replica in replicas.items():
            command = command.replace(f":{root}", f":{replica}")
        if re.search(r":/data/|\b(NAME|ROOT)\b", command):
            assert "NAME:ROOT" in command, f"no replica for {command!r}: add one to _replicas"
            continue
        argv = shlex.split(command)
        result = subprocess.run(_fermixnet() + argv[1:], cwd=tmp_path, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        ran.append(command)
        if argv[1] == "info":  # the README's Table 1 row: "prints exactly these"
            expected = ("11.18 M", "1.82 G") if "--no-mid" in argv else ("11.25 M", "1.83 G")
            assert all(v in result.stdout for v in expected), result.stdout
        elif argv[1:3] == ["data", "check"]:
            assert ": OK" in result.stdout, result.stdout
        elif argv[1:3] == ["data", "occlude"]:
            assert (tmp_path / argv[argv.index("--out") + 1] / "manifest.csv").is_file()
        else:
            assert "predict" in result.stdout and "demo" in result.stdout
    assert len(ran) >= 6, ran


def test_the_fermixnet_sessions_of_the_docs_print_what_they_show():
    """A `$ fermixnet ...` session in a doc (the model zoo's `info`) is rerun (in this process:
    the commands above test the console script), and its output must be the one shown."""
    sessions = 0
    for doc, text in DOCS.items():
        for block in _blocks(text, "|console"):
            for command, shown in re.findall(r"^\$ (fermixnet .*)\n((?:(?!\$ ).*\n)*)", block,
                                             flags=re.M):
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    assert main(shlex.split(command)[1:]) == 0, f"{doc}: {command}"
                assert out.getvalue().split() == shown.split(), f"{doc}: {command}"
                sessions += 1
    assert sessions >= 3


def _no_abbreviations(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser and its subcommands' parsers, refusing abbreviated options (`--num-class`
    for `--num-classes`): the docs show full names."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _no_abbreviations(sub)
    return parser


def test_every_cli_command_in_the_docs_parses():
    """A renamed option or subcommand must not leave a doc showing a command that fails."""
    parser, parsed = _no_abbreviations(build_parser()), 0
    for doc, text in DOCS.items():
        for line in _cli_lines(text):
            for variant in _variants(line):
                argv = shlex.split(variant)[1:]
                if argv == ["--help"]:
                    continue
                err = io.StringIO()
                with contextlib.redirect_stderr(err):
                    try:
                        parser.parse_args(argv)
                    except SystemExit:
                        pytest.fail(f"{doc}: {variant!r}: {err.getvalue().strip()}")
                parsed += 1
    assert parsed >= 40


def test_paths_named_by_the_docs_exist():
    """Every repository path (globs match at least one file) and every `tests/x.py::name`."""
    checked, missing = 0, []
    for doc, text in DOCS.items():
        for path, name in PATH_RE.findall(text):
            checked += 1
            hits = sorted(ROOT.glob(path.rstrip("/"))) if "*" in path else [ROOT / path]
            if path in WRITTEN_BY_COMMANDS:
                continue
            if not hits or not hits[0].exists():
                missing.append(f"{doc}: {path}")
            elif name and not re.search(rf"def {name}\(", hits[0].read_text()):
                missing.append(f"{doc}: {path}::{name}")
    assert checked >= 50 and not missing, missing


def test_tests_named_by_the_docs_exist():
    """Each reliability claim names the test that proves it; a renamed test must not leave a doc
    pointing at nothing. (A `test_...` name of the library, e.g. the attribute `test_sets`, is
    not a test.)"""
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    library = "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))
    names = {n for text in DOCS.values() for n in re.findall(r"`(test_\w+)`", text)
             if not re.search(rf"\b{n}\b", library)}
    assert len(names) >= 3
    assert not [n for n in names if f"def {n}(" not in sources]


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        with contextlib.suppress(ModuleNotFoundError):
            obj = importlib.import_module(".".join(parts[:i]))
            for attr in parts[i:]:
                obj = getattr(obj, attr)
            return obj
    raise ModuleNotFoundError(dotted)


def test_modules_and_names_in_the_docs_exist():
    """Every backticked `fermixnet.x.y` is an importable module or an attribute of one."""
    dotted = {d for text in DOCS.values()
              for d in re.findall(r"`(fermixnet(?:\.\w+)+)`", text) if not d.endswith(".py")}
    assert len(dotted) >= 20
    for name in sorted(dotted):
        try:
            _resolve(name)
        except (ImportError, AttributeError) as err:
            pytest.fail(f"{name}: {err}")


def test_extras_and_make_targets_in_the_docs_exist():
    """`pip install -e '.[x]'` names extras of pyproject.toml; `make x` names Makefile targets."""
    section = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1]
    extras = set(re.findall(r"^([\w-]+) = \[", section.split("\n[")[0], flags=re.M))
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    named, made = set(), set()
    for text in DOCS.values():
        for block in _blocks(text, "bash|sh"):
            for line in _shell_lines(block):
                for group in re.findall(r"pip install .*?\[([\w,-]+)\]", line):
                    named |= set(group.split(","))
                made |= set(re.findall(r"^make (\w+)", line))
    assert {"faces", "serve"} <= named and {"demo", "test"} <= made
    assert named <= extras, named - extras
    assert made <= targets, made - targets
