"""A small example data set of plain bullseye maps, so the demo runs out of the box.

Each patient gets a rest and a stress map on the 17-segment model: normal uptake is
homogeneous, ischemia lowers part of a coronary territory at stress only, infarction at
rest and stress. No colour map, canvas or text: the synthetic clinical exports of the
polar-maps issue (`polarmap data synth`) are the realistic data set.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from search.data.classes import TRIAD
from search.data.segments import TERRITORIES, segment_map
from search.files import write_atomic

__all__ = ["write_example_dataset"]

DEFAULT_COUNTS = {"Infarction": 8, "Ischemia": 10, "Normal": 22}


def write_example_dataset(
    out: Path, counts: dict[str, int] | None = None, seed: int = 0, size: int = 128
) -> Path:
    """Write images and a manifest (`manifest.csv`) under `out`; return the manifest path."""
    counts = counts or DEFAULT_COUNTS
    rng = np.random.default_rng(seed)
    segments = segment_map(size)
    rows = []
    number = 0
    for label in TRIAD.names:
        for _ in range(counts.get(label, 0)):
            number += 1
            pid = f"P{number:03d}"
            rest, stress = _uptakes(label, rng)
            row = {"patient_id": pid}
            for view, uptake in (("rest", rest), ("stress", stress)):
                image = _draw(uptake, segments, rng)
                relative = f"images/{pid}_{view}.png"
                write_atomic(out / relative, _png_bytes(image))
                row[f"{view}_path"] = relative
            row["label"] = label
            row["sex"] = str(rng.choice(["F", "M"]))
            rows.append(row)
    return write_atomic(out / "manifest.csv", csv_text(rows))


def csv_text(rows: list[dict[str, str]]) -> str:
    """Rows as CSV text with a header from the first row's keys."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _uptakes(label: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-segment uptake (index 1-17) at rest and stress, as fractions of the maximum."""
    rest = np.clip(rng.normal(0.85, 0.05, 18), 0.65, 1.0)
    stress = np.clip(rest + rng.normal(0, 0.03, 18), 0.65, 1.0)
    if label != "Normal":
        territory = TERRITORIES[str(rng.choice(list(TERRITORIES)))]
        hit = rng.choice(territory, size=rng.integers(2, len(territory) + 1), replace=False)
        drop = rng.uniform(0.25, 0.45)
        stress[hit] -= drop
        if label == "Infarction":
            rest[hit] -= drop * rng.uniform(0.8, 1.0)
    return rest, stress


def _draw(uptake: np.ndarray, segments: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    values = uptake[segments] + rng.normal(0, 0.02, segments.shape)
    values[segments == 0] = 0
    return (np.clip(values, 0, 1) * 255).astype(np.uint8)


def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
