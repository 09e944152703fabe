"""The in-memory form of a checked data set: patients, their images and labels.

Both on-disk layouts (manifest CSV, folder per class) are read into `Record`s first,
which may still be wrong; the check turns the good ones into `Patient`s of a `Dataset`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from search.data.classes import ClassSet

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Dataset", "Patient", "Record"]


@dataclass
class Record:
    """One patient as read from disk, before the check.

    Args:
        source: the file the record came from (manifest, or the image in a class folder).
        row: the manifest row (header = row 1); None for the folder layout.
        patient_id: as written; may be empty or duplicated until checked.
        label: class index, or None when the label could not be read.
        images: view -> absolute image path, or None where the cell was empty.
        metadata: every other manifest column, as text.
        positions: view -> which disc of a several-map export is the view's, from a
            `<view>_position` column (left, right, top, bottom, or 1..n).
        frames: view -> which frame of a multi-frame DICOM file, from `<view>_frame`.
        pages: view -> which page of a PDF report, from `<view>_page` (1-based).
        territories: view -> the territories a reader found abnormal, from
            `<view>_territory` (empty: none); `search.data.annotations`.
        scores: view -> the reader's 17 segment scores, from `<view>_scores`.
    """

    source: str
    row: int | None
    patient_id: str
    label: int | None
    images: dict[str, Path | None]
    metadata: dict[str, str] = field(default_factory=dict)
    positions: dict[str, str] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)  # view -> frame of a DICOM file
    pages: dict[str, int] = field(default_factory=dict)  # view -> page of a PDF file
    territories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scores: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Patient:
    """A checked patient: unique id, valid label, and a readable image per view. The label
    is None only for an unlabelled patient of a check with `require_labels=False`."""

    patient_id: str
    label: int | None
    images: dict[str, Path]
    metadata: dict[str, str]
    row: int | None = None
    positions: dict[str, str] = field(default_factory=dict)  # view -> disc of its export
    frames: dict[str, int] = field(default_factory=dict)  # view -> frame of a DICOM file
    pages: dict[str, int] = field(default_factory=dict)  # view -> page of a PDF, always set
    # a reader's annotations, where the manifest has them (search.data.annotations)
    territories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scores: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set that passed its check.

    Args:
        source: the manifest file or the class-folder root.
        class_set: the classes, in index order.
        views: the views every patient has images for (the checked input mode's views).
        patients: in file order.
        metadata_columns: extra manifest columns kept for subgroup analysis.
        fingerprint: SHA-256 over patient ids, labels and image bytes; it changes when
            any of them changes and not when rows are reordered or metadata edited.
        image_digests: patient id -> SHA-256 over its images' SHA-256s (what
            `search.data.changes` compares to say which patients' images changed).
    """

    source: Path
    class_set: ClassSet
    views: tuple[str, ...]
    patients: tuple[Patient, ...]
    metadata_columns: tuple[str, ...]
    fingerprint: str
    image_digests: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.patients)

    @property
    def labels(self) -> dict[str, int | None]:
        """patient id -> class index (None: unlabelled, see `Patient`)."""
        return {p.patient_id: p.label for p in self.patients}

    def groups(self, column: str | None) -> dict[str, str] | None:
        """patient id -> its value of metadata `column` (a split's `group_by`; None
        without one)."""
        if not column:
            return None
        return {p.patient_id: p.metadata.get(column, "") for p in self.patients}

    def class_counts(self) -> dict[str, int]:
        """Patients per class name, in class order, zeros included."""
        counts = Counter(p.label for p in self.patients)
        return {name: counts.get(i, 0) for i, name in enumerate(self.class_set.names)}

    def to_frame(self) -> pd.DataFrame:
        """One row per patient: id, label index and name, `<view>_path`, metadata columns."""
        import pandas as pd

        rows = []
        for p in self.patients:
            row: dict[str, object] = {
                "patient_id": p.patient_id,
                "label": p.label,
                "label_name": self.class_set.names[p.label] if p.label is not None else None,
            }
            row.update({f"{v}_path": str(p.images[v]) for v in self.views})
            row.update({c: p.metadata.get(c, "") for c in self.metadata_columns})
            rows.append(row)
        columns = ["patient_id", "label", "label_name"]
        columns += [f"{v}_path" for v in self.views] + list(self.metadata_columns)
        return pd.DataFrame(rows, columns=columns)
