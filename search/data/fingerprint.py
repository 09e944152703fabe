"""Fingerprints that identify a data set and a list of patients.

A result is only comparable with another when both came from the same data: the
fingerprint changes with any patient id, label or image byte, and not with row order,
file names or metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

__all__ = ["data_fingerprint", "ids_fingerprint", "images_digest"]


def data_fingerprint(
    class_names: Iterable[str], entries: Iterable[tuple[str, int, Mapping[str, str]]]
) -> str:
    """SHA-256 over the class names and each (patient id, label, view -> image SHA-256)."""
    canonical = {
        "classes": list(class_names),
        "patients": sorted(
            [pid, label, dict(sorted(images.items()))] for pid, label, images in entries
        ),
    }
    blob = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def ids_fingerprint(patient_ids: Iterable[str]) -> str:
    """SHA-256 over a set of patient ids, whatever their order."""
    blob = "\n".join(sorted(patient_ids))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def images_digest(images: Mapping[str, str]) -> str:
    """SHA-256 over one patient's view -> image SHA-256, whatever the views' order."""
    blob = json.dumps(dict(sorted(images.items())), separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
