"""The one reader of FER2013's `fer2013.csv` (`emotion,pixels,Usage`), shared by the `fer2013` and
`ferplus` adapters.

The file is read one physical line at a time: no field of the release spans lines, so a stray
double quote is reported on the line that holds it instead of swallowing the rest of the file
(which `csv.reader` over the whole file does, ending in `field larger than field limit`).
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fermixnet.data.base import FERDataset
from fermixnet.data.imageio import ImageInfo

HEADER: tuple[str, ...] = ("emotion", "pixels", "Usage")
USAGE: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
EXPECTED: dict[str, int] = {"train": 28709, "val": 3589, "test": 3589}  # rows per Usage
SIDE = 48  # every FER2013 image is 48x48 grayscale


class UnknownUsageError(ValueError):
    """A row whose `Usage` is not Training, PublicTest or PrivateTest."""


class PixelCountError(ValueError):
    """A row whose pixels are not 2304 values 0..255."""


class CSVLine(NamedTuple):
    """One physical line: its number, its fields, and what is wrong with it ("" if nothing)."""

    number: int
    fields: list[str]
    error: str = ""

    def checked(self, count: int = 0) -> list[str]:
        """The fields, after raising ValueError for a bad line or fewer than `count` fields."""
        if self.error:
            raise ValueError(self.error)
        if len(self.fields) < count:
            raise ValueError(f"line {self.number}: expected {count} fields, "
                             f"got {len(self.fields)}")  # fmt: skip
        return self.fields


def csv_lines(path: Path) -> Iterator[CSVLine]:
    """Each non-empty line of a CSV whose fields never span lines.

    A line that cannot be parsed (an unbalanced double quote) is yielded with its `error`, which
    names the file and that line, so callers raise it or skip and count it.

    Raises:
        FileNotFoundError: `path` does not exist.
    """
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            if '"' not in text:  # the release's lines: no quotes, a plain split is exact
                yield CSVLine(number, text.split(","))
            elif text.count('"') % 2:
                yield CSVLine(number, [], f"{path}:{number}: unbalanced double quote in this "
                                          "line (fields of this file never span lines)")
            else:
                try:
                    yield CSVLine(number, next(csv.reader([text], strict=True)))
                except csv.Error as err:
                    yield CSVLine(number, [], f"{path}:{number}: not a CSV line ({err})")


def check_header(path: Path, fields: Sequence[str] | None, expected: Sequence[str]) -> None:
    """Raise ValueError naming `path` unless the first fields are `expected`."""
    if fields is None or [f.strip() for f in fields[: len(expected)]] != list(expected):
        raise ValueError(f"{path}:1: expected header {','.join(expected)}, got "
                         f"{','.join(fields or []) or 'an empty file'}")  # fmt: skip


def usage_split(usage: str, where: str) -> str:
    """The split of a `Usage` value (Training -> train, PublicTest -> val, PrivateTest -> test).

    Raises:
        UnknownUsageError: any other value, naming `where` (file:line).
    """
    split = USAGE.get(usage.strip())
    if split is None:
        raise UnknownUsageError(f"{where}: Usage {usage!r} is not one of {', '.join(USAGE)}")
    return split


def parse_pixels(text: str, where: str) -> np.ndarray:
    """A (48, 48) uint8 image from 2304 space-separated values 0..255.

    Raises:
        PixelCountError: another count or a value outside 0..255, naming `where` (file:line).
    """
    try:
        with warnings.catch_warnings():
            # fromstring (text mode, ~10x faster than split) warns when it meets a non-number.
            warnings.simplefilter("error", DeprecationWarning)
            array = np.fromstring(text, dtype=np.int32, sep=" ")
    except (DeprecationWarning, ValueError):
        array = np.zeros(0, dtype=np.int32)
    if array.size != SIDE * SIDE:
        count = len(text.split())
        raise PixelCountError(f"{where}: expected {SIDE * SIDE} space-separated pixel values "
                              f"0..255, got {count} fields")  # fmt: skip
    if array.min() < 0 or array.max() > 255:
        raise PixelCountError(f"{where}: pixel values must lie in 0..255")
    return array.astype(np.uint8).reshape(SIDE, SIDE)


def read_fer2013(path: Path) -> Iterator[CSVLine]:
    """The data lines of `fer2013.csv` (`emotion,pixels,Usage`), header checked.

    Raises:
        ValueError: a wrong header (bad data lines come with their `error`, see `csv_lines`).
    """
    rows = csv_lines(path)
    first = next(rows, None)
    check_header(path, first.checked() if first else None, HEADER)
    for row in rows:
        if not row.error and len(row.fields) < 3:
            row = row._replace(error=f"{path}:{row.number}: expected 3 fields "
                                     f"emotion,pixels,Usage, got {len(row.fields)}")  # fmt: skip
        yield row


def skip_reason(err: ValueError) -> str:
    """How a skipped row is counted under `skip_bad`."""
    if isinstance(err, UnknownUsageError):
        return "unknown Usage"
    return "bad pixel count" if isinstance(err, PixelCountError) else "malformed line"


class PixelArrayDataset(FERDataset):
    """A data set whose 48x48 grayscale pixels live in memory (read from a CSV), not in files."""

    def __init__(
        self, samples: list, pixels: np.ndarray, csv_files: list[str], **kw: Any
    ) -> None:
        super().__init__(samples, **kw)
        self.pixels = pixels  # (N, 48, 48) uint8
        self.csv_files = csv_files

    def load(self, index: int) -> np.ndarray:
        return np.repeat(self.pixels[index][:, :, None], 3, axis=2)  # gray -> (48, 48, 3)

    def inspect(self, index: int) -> ImageInfo:
        return ImageInfo("L", SIDE, SIDE, "CSV")

    def source_files(self, indices: Sequence[int] | None = None) -> list[str]:
        return sorted(set(self.csv_files) | set(self.report.sources))


def stack_pixels(pixels: list[np.ndarray]) -> np.ndarray:
    """(N, 48, 48) uint8 from a list of images (an empty array for none)."""
    return np.stack(pixels) if pixels else np.zeros((0, SIDE, SIDE), np.uint8)
