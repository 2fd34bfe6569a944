"""Atomic file writes: every file the project writes (checkpoints, metrics, reports, data sets,
exports) goes through a temp file beside its target and `os.replace`, so a reader or a resumed
run never sees half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create entries for their owner only; what we write gets the usual modes.
_UMASK = _umask()
_FILE_MODE, _DIR_MODE = 0o666 & ~_UMASK, 0o777 & ~_UMASK


def temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """A new folder in `parent` (for staging a folder that is then renamed into place), with the
    permissions of a normal `mkdir` rather than mkdtemp's owner-only ones."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, _DIR_MODE)
    return path


def atomic_save(
    path: str | os.PathLike[str], write: Callable[[str], None], fsync: bool = True
) -> None:
    """Call `write(tmp)` on a temp file beside `path` (for writers that take a file name, e.g.
    safetensors), fsync it, then move it onto `path`; parent folders are created.

    `fsync=False` skips the flush to disk (~1 ms a file): still never half a file, but a power
    cut may lose it; for regenerable bulk output such as data set images."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _FILE_MODE)
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes | str, fsync: bool = True) -> None:
    """Write `data` (str as UTF-8) atomically to `path` (see `atomic_save`)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    atomic_save(path, lambda tmp: Path(tmp).write_bytes(raw), fsync)
