"""Atomic writes: readers see the old file or the new one, never a torn one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from search.files import atomic_output, current_umask, write_atomic, write_json_atomic


def test_writes_bytes(tmp_path: Path):
    target = tmp_path / "out.bin"
    assert write_atomic(target, b"\x00\xffdata") == target
    assert target.read_bytes() == b"\x00\xffdata"


def test_writes_str_as_utf8(tmp_path: Path):
    target = tmp_path / "out.txt"
    write_atomic(str(target), "Ischämie ✓\n")
    assert target.read_bytes() == "Ischämie ✓\n".encode()


def test_creates_parent_folders(tmp_path: Path):
    target = tmp_path / "a" / "b" / "c" / "out.txt"
    write_atomic(target, "x")
    assert target.read_text() == "x"


def test_replaces_an_existing_file_and_leaves_no_temporary_files(tmp_path: Path):
    target = tmp_path / "out.txt"
    target.write_text("old content that is longer")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def fail(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk gone"):
        write_atomic(target, "new")

    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    """Ctrl-C between writing and renaming must also clean up (BaseException, not Exception)."""
    target = tmp_path / "out.txt"
    target.write_text("old")

    def fail(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new")

    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("no")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_atomic(tmp_path / "out.txt", "new")
    assert list(tmp_path.iterdir()) == []


def test_write_json_atomic_round_trips(tmp_path: Path):
    data = {"seed": 3, "fractions": [0.7, 0.15, 0.15], "name": "Ischämie", "none": None}
    target = write_json_atomic(tmp_path / "sub" / "split.json", data)
    text = target.read_text(encoding="utf-8")
    assert json.loads(text) == data
    assert text.endswith("\n")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_are_readable_as_the_umask_says(tmp_path, umask, mode):
    """A temporary file is created 0600 whatever the umask; the written file is not."""
    before = os.umask(umask)
    try:
        assert current_umask() == umask
        path = write_atomic(tmp_path / "report.html", "<html></html>")
        with atomic_output(tmp_path / "weights.bin") as out:
            out.write(b"\0" * 10)
    finally:
        os.umask(before)
    assert (path.stat().st_mode & 0o777, (tmp_path / "weights.bin").stat().st_mode & 0o777) == (
        mode,
        mode,
    )
