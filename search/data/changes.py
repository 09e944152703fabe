"""What changed in a data set between two of its checks: patients added or removed,
labels changed, images changed. A resumed search compares the data with the summary it
recorded as it started, and names the difference when it refuses to go on."""

from __future__ import annotations

from collections.abc import Mapping

from search.data.dataset import Dataset

__all__ = ["data_changes", "patient_summary"]

SHOWN = 5  # patient ids named per kind of change; the rest are counted


def patient_summary(dataset: Dataset) -> dict[str, list[str | None]]:
    """patient id -> [class name (None: unlabelled), digest of its images], as JSON keeps
    it in a search's record."""
    names = dataset.class_set.names
    return {
        p.patient_id: [
            names[p.label] if p.label is not None else None,
            dataset.image_digests.get(p.patient_id),
        ]
        for p in dataset.patients
    }


def data_changes(
    before: Mapping[str, list[str | None]], after: Mapping[str, list[str | None]]
) -> list[str]:
    """Each kind of change from `before` to `after` (two `patient_summary`s), one phrase
    each, naming the first patients: empty when they agree."""
    added = [pid for pid in after if pid not in before]
    removed = [pid for pid in before if pid not in after]
    both = [pid for pid in after if pid in before]
    relabelled = [
        f"{pid}: {before[pid][0]} -> {after[pid][0]}"
        for pid in both
        if before[pid][0] != after[pid][0]
    ]
    reimaged = [pid for pid in both if before[pid][1] != after[pid][1]]
    changes = []
    for found, what in (
        (added, "added"),
        (removed, "removed"),
        (relabelled, "with another label"),
        (reimaged, "with other images"),
    ):
        if found:
            changes.append(f"{_count(found)} {what} ({_first(found)})")
    return changes


def _count(items: list[str]) -> str:
    return f"{len(items)} patient" + ("s" if len(items) != 1 else "")


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")
