"""Cleaned maps out: the de-identified maps of a data set as PNG files and a manifest
that points at them, so other tools (and this one) can read them without the exports.

    DIR/<patient>/<view>.png   the cleaned map (size x size, the disc on black)
    DIR/manifest.csv           patient_id, <view>_path..., label, metadata columns

Every command accepts DIR/manifest.csv as input: cleaning a cleaned map finds its disc
filling the square and leaves it as it is, to within a grey level.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from PIL import Image

from search.data.dataset import Dataset
from search.data.manifest import manifest_text
from search.data.preprocess import CleanedMaps
from search.files import write_atomic

__all__ = ["export_cleaned"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def export_cleaned(dataset: Dataset, cleaned: CleanedMaps, out: str | Path) -> Path:
    """Write every patient's cleaned maps under `out` and the manifest naming them;
    returns the manifest's path.

    Raises:
        ValueError: two patient ids would share a folder (they differ only in characters
            a folder name cannot hold).
    """
    out = Path(out)
    folders = {p.patient_id: _folder_name(p.patient_id) for p in dataset.patients}
    if len(set(folders.values())) < len(folders):
        raise ValueError("patient ids that differ only in unusual characters share a folder")
    index = {pid: i for i, pid in enumerate(cleaned.patient_ids)}
    rows = []
    for patient in dataset.patients:
        row = {"patient_id": patient.patient_id}
        for v, view in enumerate(cleaned.views):
            relative = f"{folders[patient.patient_id]}/{view}.png"
            buffer = io.BytesIO()
            Image.fromarray(cleaned.maps[index[patient.patient_id], v]).save(buffer, "PNG")
            write_atomic(out / relative, buffer.getvalue())
            row[f"{view}_path"] = relative
        label = patient.label
        row["label"] = "" if label is None else dataset.class_set.names[label]
        row.update({c: patient.metadata.get(c, "") for c in dataset.metadata_columns})
        rows.append(row)
    return write_atomic(out / "manifest.csv", manifest_text(rows))


def _folder_name(patient_id: str) -> str:
    return _UNSAFE.sub("_", patient_id) or "_"
