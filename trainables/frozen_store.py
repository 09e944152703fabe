"""An on-disk store of frozen work, so trials of one backbone share it.

The output of the frozen part of a backbone depends only on the backbone's weights, the
input maps, where the backbone is cut and the number format, never on the head, the
learning rate or the epoch. Trials that agree on those read one stored tensor instead of
running the frozen layers again. Entries are named by a SHA-256 of everything they depend
on, written under a temporary name and renamed (the reader never sees a partial file), and
read with `weights_only=True`. A trial that misses an entry takes a lock on it before
computing it, so concurrent trials (of one search, or of the outer searches of a nested
run) compute each entry once: the others wait, then read it. Each
carries the checksum of its bytes, its shape and dtype (`search.checked`), verified on
every read with the number of maps it must hold: a damaged entry is reported in one line,
deleted and computed again, never trained on.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch

from search.checked import DamagedEntry, read_checked, write_checked
from search.files import exclusive_lock
from search.layout import frozen_store_dir

__all__ = ["FrozenWorkStore", "tensor_digest"]

log = logging.getLogger(__name__)

ENTRY_FORMAT = 2  # 2: checked entries (search.checked); part of the key, so 1s are not read


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
        """A stable name for everything an entry depends on (and the entries' format)."""
        named = {**parts, "entry": ENTRY_FORMAT}
        return hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    @contextmanager
    def computing(self, keys: list[str]) -> Iterator[None]:
        """Hold the locks of these entries (in one order for every process, so two trials
        never wait on each other) while they are computed and stored; load them again
        inside, since another trial may have stored them while this one waited."""
        with ExitStack() as held:
            for key in sorted(set(keys)):
                held.enter_context(exclusive_lock(self.path(key).with_suffix(".lock")))
            yield

    def load(self, key: str, rows: int | None = None) -> torch.Tensor | None:
        """The stored tensor, or None when absent. `rows`: the number of maps it must hold
        (its first dimension). A damaged entry (its checksum, shape or dtype not what was
        written, or not `rows` long) is reported, deleted and so computed again: a trial
        never trains on it."""
        path = self.path(key)
        try:
            facts, content = read_checked(path)
            value = torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
            if not isinstance(value, torch.Tensor):
                raise DamagedEntry(f"it holds a {type(value).__name__}, not a tensor")
            if list(value.shape) != facts.get("shape") or str(value.dtype) != facts.get("dtype"):
                raise DamagedEntry(
                    f"it holds {value.dtype} {list(value.shape)}, its header says "
                    f"{facts.get('dtype')} {facts.get('shape')}"
                )
            if rows is not None and (value.dim() == 0 or value.shape[0] != rows):
                raise DamagedEntry(f"it holds {list(value.shape)}, not {rows} maps")
        except FileNotFoundError:
            return None
        except (DamagedEntry, OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            log.warning("frozen work %s is damaged (%s): deleted, computed again", path, exc)
            if path.is_file():  # not a folder someone put there
                path.unlink(missing_ok=True)
            return None
        return value

    def store(self, key: str, tensor: torch.Tensor) -> Path:
        """Write one tensor atomically, with its checksum, shape and dtype."""
        tensor = tensor.detach().cpu().contiguous()
        buffer = io.BytesIO()
        torch.save(tensor, buffer)
        return write_checked(
            self.path(key), buffer.getvalue(), shape=list(tensor.shape), dtype=str(tensor.dtype)
        )
