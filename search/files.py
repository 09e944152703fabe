"""Writing files so that no reader ever sees one half-written.

Every output of the project goes through `write_atomic`: the bytes land in a temporary
file beside the target, are flushed to disk, and only then renamed over it. A killed
process leaves either the old file or the new one, never a torn one. Where a search's
state and results may live on object storage (s3://...), `open_location` gives a pyarrow
file system and `write_file` keeps the same promise there: one object, put whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import posixpath
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "atomic_output",
    "check_writable",
    "create_file",
    "current_umask",
    "exclusive_lock",
    "join_location",
    "open_location",
    "parent_location",
    "read_file",
    "write_atomic",
    "write_file",
    "write_json_atomic",
]


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write `data` to `path` atomically (temporary name in the same folder, then rename).

    Returns:
        The path written.
    """
    path = Path(path)
    with atomic_output(path) as out:
        out.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write `path` through: a temporary file beside it, readable as the
    process's umask says (a temporary file is created 0600: colleagues could not read a
    report or share a cache), flushed to disk and renamed over `path` when the block
    ends; removed, leaving `path` as it was, when the block fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive lock between processes (and threads: one open file each) on a local or
    network file system, held while the block runs; the system drops it when its holder
    dies, so a killed process never leaves it taken. The lock file itself stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_umask() -> int:
    """The process's umask. Read from /proc where the system has it: the portable way
    sets it to read it, and a thread creating a file meanwhile would get the wrong mode."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write `obj` as indented JSON, atomically."""
    return write_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def open_location(location: str | os.PathLike[str]):
    """(pyarrow file system, path) for a local path (made absolute) or a URI such as
    s3://bucket/path?endpoint_override=host:port (the query configures the file system)."""
    import pyarrow.fs as pafs

    location = str(location)
    if "://" in location:
        fs, path = pafs.FileSystem.from_uri(location)
        return fs, path.rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(location))


def join_location(location: str | os.PathLike[str], name: str) -> str:
    """`name` inside `location`, a folder or a URI (whose query stays at the end)."""
    base, _, query = str(location).partition("?")
    return f"{base.rstrip('/')}/{name}" + (f"?{query}" if query else "")


def parent_location(location: str | os.PathLike[str]) -> str:
    """The folder holding `location`, a path or a URI (whose query stays at the end)."""
    base, _, query = str(location).partition("?")
    parent = base.rstrip("/").rsplit("/", 1)[0] if "/" in base.rstrip("/") else "."
    return parent + (f"?{query}" if query else "")


def write_file(fs, path: str, data: bytes | str) -> None:
    """Write `data` at `path` of `fs`, never seen half-written: atomically on a local
    disk, as one object put whole on object storage (which has no rename)."""
    import pyarrow.fs as pafs

    if isinstance(fs, pafs.LocalFileSystem):
        write_atomic(path, data)
        return
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as out:
        out.write(data.encode("utf-8") if isinstance(data, str) else data)


_PROBE = b"polarmap-search: can this storage be written? (a probe, deleted at once)\n"


def check_writable(location: str | os.PathLike[str]) -> str | None:
    """What keeps the folder `location` (a path, or a URI such as s3://bucket/runs) from
    taking a job's files, or None when nothing does; found before any compute, not after
    the data check, the cleaning and Ray's start.

    Through the same file system every write goes through (`open_location`), so object
    storage is probed alike: the folder made where missing, a probe file written under a
    temporary name, renamed, read back and deleted. Folders the probe made are removed
    again, so a refused or a dry run leaves nothing behind.

    Returns:
        None, or the problem in words, such as "is a file, not a folder" or "cannot write
        there (Permission denied)", for the caller to put after the location's name.
    """
    import pyarrow.fs as pafs

    step = "cannot reach it"
    try:
        fs, path = open_location(location)
        missing, found = [], path  # the folders the probe makes, deepest first
        info = fs.get_file_info(found)
        while info.type == pafs.FileType.NotFound:
            missing.append(found)
            parent = posixpath.dirname(found)
            if parent in ("", found):  # the root, or an object store's bucket
                break
            found, info = parent, fs.get_file_info(parent)
        if info.type == pafs.FileType.File:
            if found == path:
                return "is a file, not a folder"
            return f"cannot make the folder: {found} is a file, not a folder"
        try:
            step = "cannot make the folder"
            fs.create_dir(path, recursive=True)
            return _probe(fs, path)
        finally:
            _remove_empty(fs, missing)
    except (OSError, ValueError) as exc:  # pyarrow's errors on a bad URI are ValueErrors
        return f"{step} ({_reason(exc)})"


def _probe(fs, folder: str) -> str | None:
    """Write, rename, read back and delete a probe file in `folder`: None, or the first
    step that failed and why (its probe file deleted where the store allows)."""
    name = f".polarmap-probe-{uuid.uuid4().hex}"
    written, renamed = f"{folder}/{name}.tmp", f"{folder}/{name}"
    step = "cannot write there"
    try:
        write_file(fs, written, _PROBE)
        step = "cannot rename a file there"
        fs.move(written, renamed)
        step = "cannot read back what it wrote"
        if read_file(fs, renamed) != _PROBE:
            raise OSError("it reads differently")
        step = "cannot delete a file there"
        fs.delete_file(renamed)
    except OSError as exc:
        for leftover in (written, renamed):
            with contextlib.suppress(OSError):
                fs.delete_file(leftover)
        return f"{step} ({_reason(exc)})"
    return None


def _reason(exc: BaseException) -> str:
    """The system's words for an OS error ("Permission denied"), else the error's own."""
    errno = getattr(exc, "errno", None)
    return os.strerror(errno) if errno else str(exc)


def _remove_empty(fs, folders: list[str]) -> None:
    """Remove `folders` (deepest first) while each is empty: what the probe made goes, a
    folder something else has written into meanwhile stays."""
    import pyarrow.fs as pafs

    for folder in folders:
        try:
            if isinstance(fs, pafs.LocalFileSystem):
                os.rmdir(folder)  # only an empty one, in one step
            elif fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
                return
            else:
                fs.delete_dir(folder)
        except OSError:
            return


def read_file(fs, path: str) -> bytes:
    with fs.open_input_stream(path) as stream:
        return stream.read()


def create_file(fs, path: str, data: bytes | str) -> bool:
    """Write `data` at `path` of `fs` only if nothing is there yet; False when something
    is. On a local or network disk the check and the write are one step (a hard link of
    the finished temporary file), so of two processes racing for one path exactly one
    wins; object storage has no such step, and there it is a check, then a put."""
    import pyarrow.fs as pafs

    if not isinstance(fs, pafs.LocalFileSystem):
        if fs.get_file_info(path).type != pafs.FileType.NotFound:
            return False
        write_file(fs, path, data)
        return True
    target = Path(path)
    staged = target.with_name(f".{target.name}.new-{uuid.uuid4().hex}")
    write_atomic(staged, data)
    try:
        os.link(staged, target)
    except FileExistsError:
        return False
    finally:
        staged.unlink(missing_ok=True)
    return True
