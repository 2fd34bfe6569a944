"""The README's Python example runs as written, and its set-up commands are what CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


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


def test_tests_named_by_the_readme_exist():
    """Each reliability claim names the test that proves it; a renamed test must not leave the
    README pointing at nothing."""
    files = set(re.findall(r"`tests/(test_\w+\.py)`", README))
    names = set(re.findall(r"`(test_\w+)`", README))
    assert files and names
    sources = {p.name: p.read_text() for p in (ROOT / "tests").glob("test_*.py")}
    assert files <= set(sources)
    for name in names:
        assert any(f"def {name}(" in src for src in sources.values()), name
