"""Progress lines for logs (no terminal) at a steady interval; tqdm bars on a terminal."""

from __future__ import annotations

import io
import re

import pytest

from fermixnet.progress import LogProgress, parse_every, progress_bar


class FakeClock:
    """Seconds that advance only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_every_30_seconds_with_counts_rate_and_eta():
    out, clock = io.StringIO(), FakeClock()
    bar = LogProgress(range(10), desc="epoch 1", unit="it", every="30s", file=out, clock=clock)
    for step in bar:
        clock.now += 10.0  # each step takes 10 s
        bar.set_postfix(loss=f"{1 / (step + 1):.4f}")
    lines = out.getvalue().splitlines()
    # 10 s per step: a line after steps 3, 6 and 9 (30 s apart), none in between.
    assert [re.match(r"epoch 1: (\d+)/10", ln).group(1) for ln in lines] == ["3", "6", "9"]
    assert lines[0] == ("epoch 1: 3/10 (30%) loss=0.3333 | 0.10 it/s, elapsed 0:00:30, "
                        "eta 0:01:10")
    assert lines[-1].endswith("elapsed 0:01:30, eta 0:00:10")


def test_lines_every_n_steps_without_total(monkeypatch):
    monkeypatch.setenv("FERMIXNET_PROGRESS_EVERY", "4")
    out = io.StringIO()
    bar = LogProgress(desc="caching", unit="img", file=out, clock=FakeClock())
    for _ in range(5):
        bar.update(3)  # 3, 6, 9, 12, 15 images: crossing 4, 8, 12 (twice at 12)
    counts = [int(re.match(r"caching: (\d+) \|", ln).group(1))
              for ln in out.getvalue().splitlines()]
    assert counts == [6, 9, 12]


def test_disabled_prints_nothing():
    out = io.StringIO()
    bar = LogProgress(range(5), every="1", file=out, disable=True)
    assert list(bar) == [0, 1, 2, 3, 4] and out.getvalue() == ""


def test_progress_bar_is_tqdm_on_a_terminal_and_lines_otherwise():
    from tqdm import tqdm

    assert isinstance(progress_bar(range(3), file=Terminal()), tqdm)
    assert isinstance(progress_bar(range(3), file=io.StringIO()), LogProgress)
    assert isinstance(progress_bar(range(3), file=Terminal(), disable=True), LogProgress)


@pytest.mark.parametrize(("text", "expected"), [("30s", (30.0, None)), ("0.5s", (0.5, None)),
                                                ("200", (None, 200))])
def test_parse_every(text, expected):
    assert parse_every(text) == expected


@pytest.mark.parametrize("text", ["", "0", "-3", "fast", "10m"])
def test_parse_every_rejects(text):
    with pytest.raises(ValueError, match="FERMIXNET_PROGRESS_EVERY"):
        parse_every(text)
