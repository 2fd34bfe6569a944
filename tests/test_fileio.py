"""Atomic writes: the target is whole or absent, never half written; no temp files remain."""

from __future__ import annotations

import os
import stat

import pytest

from fermixnet.fileio import atomic_save, atomic_write


@pytest.mark.parametrize("fsync", [True, False])
def test_atomic_write_replaces_whole_files(tmp_path, fsync):
    target = tmp_path / "sub" / "out.txt"
    atomic_write(target, "first", fsync=fsync)
    atomic_write(target, b"second", fsync=fsync)
    assert target.read_text() == "second"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask  # not mkstemp's owner-only 0600
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_a_failing_writer_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "weights.bin"
    atomic_write(target, b"good")

    def half_then_crash(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(b"ha")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_save(target, half_then_crash)
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_temp_dir_has_normal_permissions(tmp_path):
    from fermixnet.fileio import temp_dir

    mask = os.umask(0)
    os.umask(mask)
    staged = temp_dir(tmp_path, prefix=".stage-")
    assert staged.parent == tmp_path and staged.name.startswith(".stage-")
    assert stat.S_IMODE(staged.stat().st_mode) == 0o777 & ~mask
