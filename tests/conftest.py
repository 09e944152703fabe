"""Shared fixtures: small, valid data sets written to a temporary folder."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from search.data.example import write_example_dataset


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """A valid dual-view triad manifest: 8 Infarction, 10 Ischemia, 22 Normal, 96 px maps."""
    return write_example_dataset(tmp_path / "data", size=96)


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
