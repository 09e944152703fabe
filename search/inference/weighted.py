"""A greedy ensemble's folder (`OUT/ensemble`) as one model for `predict` and `evaluate`.

Its `ensemble.json` names the members' model folders (relative to it) and their weights.
Members may differ in backbone, views and input size: each reads the maps as it was
trained to, and the ensemble's class probabilities are the weighted mean of theirs, class 1
of a binary set called from the ensemble's own threshold (chosen on its out-of-fold
predictions), exactly as finalize tested it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from search.errors import FinalizeError
from search.inference.export import Classifier, ExportedModel, load_model

__all__ = [
    "ENSEMBLE_FILE",
    "ENSEMBLE_FORMAT",
    "WeightedEnsemble",
    "WeightedMember",
    "is_ensemble_folder",
    "load_weighted_ensemble",
]

ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_FORMAT = "polarmap-weighted-ensemble/1"
_EXPORT_AGAIN = "copy the finals folder again, or run polarmap finalize again"  # a damaged file


@dataclass(frozen=True)
class WeightedMember:
    model: Classifier
    exported: ExportedModel
    weight: float
    folder: Path


@dataclass(frozen=True)
class WeightedEnsemble:
    """The members and weights of a greedy ensemble; `class_names`, `views` and
    `threshold` describe it as a model folder's config describes a model."""

    folder: Path
    class_names: tuple[str, ...]
    threshold: float | None
    members: tuple[WeightedMember, ...]

    @property
    def views(self) -> tuple[str, ...]:
        """Every view some member reads (a manifest must hold them all)."""
        return tuple(sorted({view for m in self.members for view in m.exported.views}))


def is_ensemble_folder(folder: str | Path) -> bool:
    return (Path(folder) / ENSEMBLE_FILE).is_file()


def load_weighted_ensemble(folder: str | Path) -> WeightedEnsemble:
    """The ensemble in `folder`, every member loaded and checked against it.

    Raises:
        FileNotFoundError: no ensemble.json, or a member's model folder is missing.
        ValueError: the file is not an ensemble's, its weights are not positive and
            summing to 1, or a member's classes are not the ensemble's.
    """
    folder = Path(folder)
    path = folder / ENSEMBLE_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # cut short or overwritten, or not UTF-8
        raise FinalizeError(f"{path}: not valid JSON ({exc}); {_EXPORT_AGAIN}") from exc
    if not isinstance(record, dict):
        raise FinalizeError(f"{path}: not an ensemble's file (a JSON object); {_EXPORT_AGAIN}")
    if record.get("format") != ENSEMBLE_FORMAT:
        raise FinalizeError(f"{path}: format {record.get('format')!r}, not {ENSEMBLE_FORMAT}")
    try:
        class_names = tuple(record["class_names"])
        entries = record.get("members") or []
        weights = [float(entry["weight"]) for entry in entries]
        named = [str(entry["model"]) for entry in entries]
    except KeyError as exc:
        raise FinalizeError(f"{path}: not an ensemble's file (no {exc}); {_EXPORT_AGAIN}") from exc
    except (TypeError, ValueError) as exc:
        raise FinalizeError(f"{path}: not an ensemble's file ({exc}); {_EXPORT_AGAIN}") from exc
    if not entries:
        raise FinalizeError(f"{path}: members: none listed")
    if min(weights) <= 0 or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
        raise FinalizeError(f"{path}: members' weights {weights}: expected positive, summing to 1")
    members = []
    for member, weight in zip(named, weights, strict=True):
        member_folder = _member_folder(folder, member)
        model, exported = load_model(member_folder)
        if tuple(exported.class_names) != class_names:
            raise FinalizeError(
                f"{path}: member {member_folder} predicts {list(exported.class_names)}, "
                f"the ensemble {list(class_names)}"
            )
        members.append(WeightedMember(model, exported, weight, member_folder))
    return WeightedEnsemble(folder, class_names, record.get("threshold"), tuple(members))


def _member_folder(folder: Path, named: str) -> Path:
    """A member's folder as ensemble.json names it: relative to the ensemble's folder (so
    the finals folder can be moved whole), or as written by a version that kept the path
    finalize was given."""
    for candidate in (folder / named, Path(named)):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"{folder / ENSEMBLE_FILE}: member model folder {named} not found")
