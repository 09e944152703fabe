"""Shared fixtures: small, valid data sets written to a temporary folder."""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data.manifest import manifest_text
from search.data.segments import TERRITORIES, segment_map
from search.files import write_atomic

EXAMPLE_COUNTS = {"Infarction": 8, "Ischemia": 10, "Normal": 22}


def write_example_dataset(out: Path, size: int = 96, seed: int = 0) -> Path:
    """Plain grey bullseyes, one uptake per segment: a fast, valid triad data set.

    Ischemia lowers part of a territory at stress, infarction at rest and stress.
    """
    rng = np.random.default_rng(seed)
    segments = segment_map(size)
    rows, number = [], 0
    for label, count in EXAMPLE_COUNTS.items():
        for _ in range(count):
            number += 1
            pid = f"P{number:03d}"
            rest = np.clip(rng.normal(0.85, 0.05, 18), 0.65, 1.0)
            stress = rest.copy()
            if label != "Normal":
                territory = TERRITORIES[str(rng.choice(list(TERRITORIES)))]
                hit = rng.choice(territory, size=2, replace=False)
                stress[hit] -= 0.35
                if label == "Infarction":
                    rest[hit] -= 0.3
            row = {"patient_id": pid}
            for view, uptake in (("rest", rest), ("stress", stress)):
                pixels = uptake[segments] + rng.normal(0, 0.02, segments.shape)
                pixels[segments == 0] = 0
                buffer = io.BytesIO()
                Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(
                    buffer, format="PNG"
                )
                write_atomic(out / f"images/{pid}_{view}.png", buffer.getvalue())
                row[f"{view}_path"] = f"images/{pid}_{view}.png"
            row["label"] = label
            row["sex"] = str(rng.choice(["F", "M"]))
            rows.append(row)
    return write_atomic(out / "manifest.csv", manifest_text(rows))


@pytest.fixture(autouse=True)
def private_map_cache(tmp_path_factory, monkeypatch):
    """Commands that fall back to the default map cache and frozen-work store write to
    temporary ones, never to the user's ~/.cache."""
    monkeypatch.setenv("POLARMAP_CACHE", str(tmp_path_factory.mktemp("map-cache")))
    monkeypatch.setenv("POLARMAP_FROZEN", str(tmp_path_factory.mktemp("frozen")))


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """A valid dual-view triad manifest: 8 Infarction, 10 Ischemia, 22 Normal, 96 px maps."""
    return write_example_dataset(tmp_path / "data")


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture
def edit_manifest(manifest: Path):
    """Rewrite the manifest through a function of its rows (row 1 is the header, as in
    the check's messages: `rows[4]` is row 5)."""

    def edit(change) -> Path:
        rows = read_rows(manifest)
        change(rows)
        return write_rows(manifest, rows)

    return edit


@dataclass
class FinishedSearch:
    """A real search's folders: `storage` holds its experiment (`storage/name`) and the
    result tables (`results`); `out` is what it printed."""

    root: Path
    storage: Path
    name: str
    out: str

    @property
    def results(self) -> Path:
        return self.storage / "results"

    @property
    def experiment(self) -> Path:
        return self.storage / self.name


@pytest.fixture(scope="session")
def finished_search(tmp_path_factory) -> FinishedSearch:
    """A real search on Ray, run once per session for the tests that read what a search
    leaves: test_resnet, stress and dual, 3 trials a pair, 1 + 2 epochs, in the default
    storage folder (`polarmap-runs`) under `root`, named `my-search`."""
    from search.cli import main

    root = tmp_path_factory.mktemp("finished-search")
    manifest = write_example_dataset(root / "data")
    storage = root / "polarmap-runs"
    args = [
        "search", "run", "--data", str(manifest), "--space", "demo", "--backbones",
        "test_resnet", "--modes", "stress,dual", "--split", "50/25/25", "--samples", "3",
        "--warmup-epochs", "1", "--finetune-epochs", "2", "--storage", str(storage),
        "--name", "my-search", "--quiet",
    ]  # fmt: skip
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(printed):
        env.setenv("POLARMAP_CACHE", str(root / "map-cache"))  # session-wide: no autouse
        env.setenv("POLARMAP_FROZEN", str(root / "frozen"))
        assert main(args) == 0
    return FinishedSearch(root, storage, "my-search", printed.getvalue())
