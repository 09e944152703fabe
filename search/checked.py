"""Cache entries that say when they are damaged: a header with the SHA-256 of the content
and what the content is (shape, dtype), then the content.

A cache entry is found by a name that hashes everything it depends on, so a reader
trusts what it finds; a file garbled on disk, or swapped by hand, would then be used as
is (a trial training on noise). Each entry carries the checksum of its bytes and the
shape and dtype they decode to; `read_checked` verifies the checksum, the caller the
decoded value, and a bad entry is reported, deleted and made again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from search import errors
from search.files import write_atomic

__all__ = ["MAGIC", "DamagedEntry", "read_checked", "write_checked"]

MAGIC = b"polarmap-entry/1\n"


class DamagedEntry(errors.DataError, ValueError):
    """An entry whose bytes are not what was written, or that decodes to something else
    than its header says; the message says which."""


def write_checked(path: str | os.PathLike[str], content: bytes, **facts: Any) -> Path:
    """Write `content` behind a header of its checksum and `facts` (shape, dtype...),
    atomically."""
    header = json.dumps({"sha256": hashlib.sha256(content).hexdigest(), **facts}).encode()
    return write_atomic(path, MAGIC + len(header).to_bytes(4, "big") + header + content)


def read_checked(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
    """The facts and the content of an entry, its checksum verified.

    Raises:
        FileNotFoundError: no entry.
        DamagedEntry: not an entry, a header that cannot be read, or content whose
            checksum differs from the header's.
    """
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise DamagedEntry("not a checked cache entry")
    start = len(MAGIC) + 4
    size = int.from_bytes(data[len(MAGIC) : start], "big")
    try:
        facts = json.loads(data[start : start + size])
    except ValueError as exc:
        raise DamagedEntry(f"its header cannot be read ({exc})") from None
    content = data[start + size :]
    if not isinstance(facts, dict) or hashlib.sha256(content).hexdigest() != facts.get("sha256"):
        raise DamagedEntry("its content does not match its checksum")
    return facts, content
