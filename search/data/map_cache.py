"""An on-disk cache of cleaned maps, so a search decodes and cleans each export once.

An entry is a uint8 .npy array named by the SHA-256 of the export's bytes and of the
cleaning parameters (for a PDF, its page and the renderer's version): a changed byte or
parameter gives a new name, so a stale entry is never read. It carries the checksum of
its bytes, its shape and dtype (`search.checked`), verified on every read: a damaged
entry (cut short, garbled, of another shape) is reported in one line, deleted and
cleaned again, never used. Entries are written under a temporary name and renamed into
place, so concurrent readers and a writer killed half-way never see a partial file.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.checked import DamagedEntry, read_checked, write_checked
from search.data.clean import CLEANING_VERSION, CropBox
from search.data.pdf import renderer
from search.layout import map_cache_dir

__all__ = ["CleaningParams", "MapCache"]

log = logging.getLogger(__name__)

ENTRY_FORMAT = 2  # 2: checked entries (search.checked); part of the name, so 1s are not read


@dataclass(frozen=True)
class CleaningParams:
    """Everything besides the image bytes that decides a cleaned map."""

    size: int
    crop: CropBox | None = None
    version: int = CLEANING_VERSION
    position: str | None = None  # which disc of a several-map export
    frame: int | None = None  # which frame of a multi-frame DICOM file
    page: int | None = None  # which page of a PDF (always set for one: `check_dataset`)

    def digest(self) -> str:
        fields = {"size": self.size, "crop": str(self.crop or "auto"), "version": self.version,
                  "entry": ENTRY_FORMAT, "position": self.position,
                  "frame": self.frame}  # fmt: skip
        if self.page is not None:  # a PDF's page: the renderer decides its pixels too
            fields.update(page=self.page, render=renderer())  # other exports' keys as before
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


class MapCache:
    """Cleaned maps under `root`, two-level fan-out by image hash."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else map_cache_dir()

    def path(self, image_sha256: str, params: CleaningParams) -> Path:
        name = f"{image_sha256}-{params.digest()[:16]}.npy"
        return self.root / image_sha256[:2] / name

    def load(self, image_sha256: str, params: CleaningParams) -> np.ndarray | None:
        """The cached map, or None when absent. A damaged entry is reported, deleted and
        so cleaned again."""
        path = self.path(image_sha256, params)
        expected = (params.size, params.size, 3)
        try:
            facts, content = read_checked(path)
            pixels = np.load(io.BytesIO(content), allow_pickle=False)
            if pixels.dtype != np.uint8 or pixels.shape != expected:
                raise DamagedEntry(f"it holds {pixels.dtype} {pixels.shape}")
            if facts.get("shape") != list(expected) or facts.get("dtype") != "uint8":
                raise DamagedEntry(f"its header says {facts.get('dtype')} {facts.get('shape')}")
        except FileNotFoundError:
            return None
        except (DamagedEntry, OSError, ValueError, EOFError) as exc:
            log.warning(
                "map cache entry %s is damaged (%s; expected uint8 %s): deleted, the map is "
                "cleaned again", path, exc, expected,
            )  # fmt: skip
            if path.is_file():  # not a folder someone put there
                path.unlink(missing_ok=True)
            return None
        return pixels

    def remove_stale(self, older_than: float = 3600.0) -> int:
        """Delete temporary files that killed writers left behind; returns how many."""
        removed = 0
        for path in self.root.glob("*/.*.tmp"):
            try:
                if time.time() - path.stat().st_mtime > older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # another process got there first
                pass
        return removed

    def store(self, image_sha256: str, params: CleaningParams, pixels: np.ndarray) -> Path:
        """Write one map atomically, with its checksum, shape and dtype; concurrent writers
        of the same entry are harmless because they write the same bytes."""
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        buffer = io.BytesIO()
        np.save(buffer, pixels, allow_pickle=False)
        return write_checked(
            self.path(image_sha256, params), buffer.getvalue(),
            shape=list(pixels.shape), dtype=str(pixels.dtype),
        )  # fmt: skip
