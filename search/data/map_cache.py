"""An on-disk cache of cleaned maps, so a search decodes and cleans each export once.

An entry is a uint8 .npy array named by the SHA-256 of the export's bytes and of the
cleaning parameters: a changed byte or parameter gives a new name, so a stale entry is
never read. Entries are written under a temporary name and renamed into place, so
concurrent readers and a writer killed half-way never see a partial file; a damaged
entry is treated as missing and written again.
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

from search.data.clean import CLEANING_VERSION, CropBox
from search.files import write_atomic
from search.layout import map_cache_dir

__all__ = ["CleaningParams", "MapCache"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleaningParams:
    """Everything besides the image bytes that decides a cleaned map."""

    size: int
    crop: CropBox | None = None
    version: int = CLEANING_VERSION

    def digest(self) -> str:
        text = json.dumps(
            {"size": self.size, "crop": str(self.crop or "auto"), "version": self.version}
        )
        return hashlib.sha256(text.encode()).hexdigest()


class MapCache:
    """Cleaned maps under `root`, two-level fan-out by image hash."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else map_cache_dir()

    def path(self, image_sha256: str, params: CleaningParams) -> Path:
        name = f"{image_sha256}-{params.digest()[:16]}.npy"
        return self.root / image_sha256[:2] / name

    def load(self, image_sha256: str, params: CleaningParams) -> np.ndarray | None:
        """The cached map, or None when absent or unreadable (then it is rebuilt)."""
        path = self.path(image_sha256, params)
        try:
            pixels = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as exc:
            log.debug("map cache entry %s unreadable (%s); cleaning the map again", path, exc)
            return None
        if pixels.dtype != np.uint8 or pixels.shape != (params.size, params.size, 3):
            log.debug("map cache entry %s is %s %s; cleaning the map again",
                      path, pixels.dtype, pixels.shape)  # fmt: skip
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
        """Write one map atomically; concurrent writers of the same entry are harmless
        because they write the same bytes."""
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(pixels, dtype=np.uint8), allow_pickle=False)
        return write_atomic(self.path(image_sha256, params), buffer.getvalue())
