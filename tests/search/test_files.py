"""Atomic writes: readers see the old file or the new one, never a torn one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from search import files
from search.files import (
    atomic_output,
    check_writable,
    current_umask,
    write_atomic,
    write_json_atomic,
)


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


# -- the storage probe: can a search write there, found before any compute


def test_a_folder_that_can_be_written_passes_and_keeps_what_it_held(tmp_path):
    (tmp_path / "kept.txt").write_text("x")
    assert check_writable(tmp_path) is None
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]  # no probe left behind


def test_a_missing_folder_passes_and_is_not_left_behind(tmp_path):
    """A refused or dry run must leave no storage behind: folders the probe made go again."""
    assert check_writable(tmp_path / "a" / "b" / "runs") is None
    assert list(tmp_path.iterdir()) == []


def test_a_file_is_not_a_folder(tmp_path):
    storage = tmp_path / "runs"
    storage.write_text("not a folder")
    assert check_writable(storage) == "is a file, not a folder"
    assert storage.read_text() == "not a folder"


def test_a_folder_under_a_file_names_the_file(tmp_path):
    (tmp_path / "f").write_text("x")
    problem = check_writable(tmp_path / "f" / "runs")
    assert problem == f"cannot make the folder: {tmp_path / 'f'} is a file, not a folder"


def test_a_write_refused_says_why(tmp_path, monkeypatch):
    """As a read-only folder does for anyone but root (the tests may run as root)."""

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(files, "write_atomic", refuse)
    assert check_writable(tmp_path / "runs") == "cannot write there (Permission denied)"
    assert list(tmp_path.iterdir()) == []  # the folder it made is gone again


class Refusing:
    """A local file system whose `step` fails, as a store refusing that operation would."""

    def __init__(self, step: str, error: OSError):
        import pyarrow.fs as pafs

        self.fs, self.step, self.error = pafs.LocalFileSystem(), step, error

    def __getattr__(self, name):
        if name != self.step:
            return getattr(self.fs, name)

        def refuse(*args, **kwargs):
            raise self.error

        return refuse


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("create_dir", "cannot make the folder (Read-only file system)"),
        ("open_output_stream", "cannot write there (Read-only file system)"),
        ("move", "cannot rename a file there (Read-only file system)"),
        ("delete_file", "cannot delete a file there (Read-only file system)"),
    ],
)
def test_each_step_refused_is_named(tmp_path, monkeypatch, step, expected):
    storage = tmp_path / "runs"
    refusing = Refusing(step, OSError(30, "Read-only file system"))
    monkeypatch.setattr(files, "open_location", lambda location: (refusing, str(storage)))
    assert check_writable(storage) == expected
    if step != "delete_file":  # a store that deletes nothing keeps the probe
        assert list(tmp_path.iterdir()) == []  # no probe, no folder left behind


def test_a_file_read_back_different_is_a_problem(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "read_file", lambda fs, path: b"something else")
    assert check_writable(tmp_path) == "cannot read back what it wrote (it reads differently)"
    assert list(tmp_path.iterdir()) == []


def test_object_storage_is_probed_alike(s3_storage):
    import pyarrow.fs as pafs

    from search.files import join_location, open_location

    assert check_writable(join_location(s3_storage, "new/runs")) is None
    fs, root = open_location(s3_storage)
    bucket = root.split("/")[0]
    names = [i.path for i in fs.get_file_info(pafs.FileSelector(bucket, recursive=True))]
    assert not [n for n in names if "probe" in n]  # the probe is gone
    fs.open_output_stream(f"{root}/taken").close()
    assert check_writable(join_location(s3_storage, "taken")) == "is a file, not a folder"
    query = s3_storage.partition("?")[2]
    missing = check_writable(f"s3://no-such-bucket/runs?{query}")
    assert missing is not None and missing.startswith("cannot make the folder (")
