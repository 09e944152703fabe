"""The held-out test patients, read here, once per model, and nowhere in the search."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from search.data.normalize import backbone_input, normalize_maps
from search.explanation.explain import TestPatients, read_defect_territories
from search.tuning.prepare import PreparedSearch
from trainables.data import select_views

__all__ = ["held_out_patients", "labels_of"]


def held_out_patients(prepared: PreparedSearch, backbone: str, views: tuple[str, ...]):
    """The held-out test patients as `backbone` sees them in `views`: read here, once per
    model, and nowhere in the search."""
    data = prepared.data
    inputs = backbone_input(backbone)
    cleaned = data.maps[inputs.size]
    row = cleaned.index()
    ids = tuple(data.split.test)
    maps = select_views(cleaned, views)[[row[i] for i in ids]]
    labels = np.asarray([data.labels[i] for i in ids], dtype=np.int64)
    source = Path(prepared.dataset.source)
    truth = source.parent / "truth" if source.is_file() else source / "truth"
    territories = read_defect_territories(truth, ids) if truth.is_dir() else {}
    by_id = {p.patient_id: p for p in prepared.dataset.patients}
    return TestPatients(ids, normalize_maps(maps, inputs), maps, labels, views, territories,
                        _test_metadata(prepared, ids),
                        {i: dict(by_id[i].territories) for i in ids if by_id[i].territories},
                        {i: dict(by_id[i].scores) for i in ids if by_id[i].scores})  # fmt: skip


def _test_metadata(prepared: PreparedSearch, ids: tuple[str, ...]) -> dict[str, list[str]]:
    """Each manifest metadata column's value for the test patients, in `ids` order."""
    by_id = {p.patient_id: p for p in prepared.dataset.patients}
    return {column: [by_id[i].metadata.get(column, "") for i in ids]
            for column in prepared.dataset.metadata_columns}  # fmt: skip


def labels_of(prepared: PreparedSearch, ids: tuple[str, ...]) -> np.ndarray:
    """The class indices of patients `ids`, in their order."""
    return np.asarray([prepared.data.labels[i] for i in ids], dtype=np.int64)
