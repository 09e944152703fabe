"""An on-disk store of frozen work, so trials of one backbone share it.

The output of the frozen part of a backbone depends only on the backbone's weights, the
input maps, where the backbone is cut and the number format, never on the head, the
learning rate or the epoch. Trials that agree on those read one stored tensor instead of
running the frozen layers again. Entries are named by a SHA-256 of everything they depend
on, written under a temporary name and renamed (concurrent trials may both compute an
entry; the reader never sees a partial file), and read with `weights_only=True`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from search.files import write_atomic
from search.layout import frozen_store_dir

__all__ = ["FrozenWorkStore", "tensor_digest"]

log = logging.getLogger(__name__)


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 over a tensor's shape, dtype and bytes."""
    data = tensor.detach().contiguous().cpu()
    digest = hashlib.sha256(f"{tuple(data.shape)}:{data.dtype}".encode())
    if data.numel():
        digest.update(memoryview(data.view(torch.uint8).numpy()))
    return digest.hexdigest()


class FrozenWorkStore:
    """Tensors of frozen work under `root`, one file per key."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else frozen_store_dir()

    @staticmethod
    def key(**parts: Any) -> str:
        """A stable name for everything an entry depends on."""
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def load(self, key: str) -> torch.Tensor | None:
        """The stored tensor, or None when absent or unreadable."""
        try:
            value = torch.load(self.path(key), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            log.debug("frozen work %s unreadable (%s); computing it again", self.path(key), exc)
            return None
        return value if isinstance(value, torch.Tensor) else None

    def store(self, key: str, tensor: torch.Tensor) -> Path:
        buffer = io.BytesIO()
        torch.save(tensor.detach().cpu().contiguous(), buffer)
        return write_atomic(self.path(key), buffer.getvalue())
