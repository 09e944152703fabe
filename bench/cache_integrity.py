"""What verifying cache entries costs: the map cache's and the frozen-work store's checked
reads (checksum, shape, dtype) against plain reads of the same bytes, measured in the
same run, and against the trial that reads them.

    .venv/bin/python bench/cache_integrity.py [--maps 400] [--patients 218]

Map entries are 224 x 224 RGB (the seeds' input); a frozen entry holds resnet18's layer-3
output for every patient of a split and one view (256 x 14 x 14 float32, 200 KB a map),
the largest frozen work the seeds' protocol stores. A trial reads each of its frozen
entries once (train and validation, each view, prefix and pooled features).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from search.data.map_cache import CleaningParams, MapCache
from trainables.frozen_store import FrozenWorkStore


def timed(fn, repeats: int = 3) -> float:
    """Best of `repeats` wall times of fn(), in seconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--maps", type=int, default=400, help="map cache entries (default 400)")
    parser.add_argument("--patients", type=int, default=218, help="maps per frozen entry")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        cache, params = MapCache(Path(folder) / "maps"), CleaningParams(224)
        shas = [f"{i:064x}" for i in range(args.maps)]
        for sha in shas:
            cache.store(sha, params, rng.integers(0, 255, (224, 224, 3), dtype=np.uint8))
        plain = [
            cache.path(sha, params).read_bytes()[-(224 * 224 * 3 + 128) :] for sha in shas
        ]  # the .npy part alone: its header is 128 bytes
        checked_maps = timed(lambda: [cache.load(sha, params) for sha in shas])
        plain_maps = timed(lambda: [np.load(io.BytesIO(data)) for data in plain])

        store = FrozenWorkStore(Path(folder) / "frozen")
        key = FrozenWorkStore.key(kind="prefix", split="train", view=0)
        tensor = torch.randn(args.patients, 256, 14, 14)
        store.store(key, tensor)
        buffer = io.BytesIO()
        torch.save(tensor, buffer)
        raw = buffer.getvalue()
        checked_frozen = timed(lambda: store.load(key, rows=args.patients))
        plain_frozen = timed(lambda: torch.load(io.BytesIO(raw), weights_only=True))

    per_map = (checked_maps - plain_maps) / args.maps * 1e3
    print(f"map cache, {args.maps} entries of 224 x 224 x 3:")
    print(
        f"  checked {checked_maps * 1e3:.1f} ms, plain {plain_maps * 1e3:.1f} ms "
        f"(ratio {checked_maps / plain_maps:.2f}); verifying costs {per_map:.3f} ms a map"
    )
    size = tensor.numel() * 4 / 2**20
    print(f"frozen work, one entry of {args.patients} x 256 x 14 x 14 float32 ({size:.0f} MB):")
    print(
        f"  checked {checked_frozen * 1e3:.1f} ms, plain {plain_frozen * 1e3:.1f} ms "
        f"(ratio {checked_frozen / plain_frozen:.2f})"
    )
    # A dual-view trial reads 2 splits x 2 views x 2 kinds of frozen work once.
    per_trial = 8 * (checked_frozen - plain_frozen)
    print(f"per dual-view trial (8 such reads): verifying adds {per_trial:.2f} s")


if __name__ == "__main__":
    main()
