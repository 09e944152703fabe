"""The records finalize makes and the reports, tables and nested pooling read: one module,
annotated, that every consumer imports, so none of them takes its inputs untyped.

Plain data only (numpy, pandas, paths and the figures of `search.inference.evaluate`): the
reporting layer reads these without importing any training code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from results.conformal import ConformalSets
from results.ensemble_selection import EnsembleSelection
from search.inference.evaluate import EvaluationFigures

__all__ = [
    "BASELINE_NAME",
    "CHECK_COLUMNS",
    "ENSEMBLE_NAME",
    "BaselineModel",
    "CamFindings",
    "Comparisons",
    "Conformal",
    "EnsembleFinal",
    "FinalModel",
    "FinalizedSearch",
    "GreedyEnsemble",
    "PooledModel",
    "first_seeds",
]

BASELINE_NAME = "segment logistic regression"
CHECK_COLUMNS = ["view", "check", "attribution", "value", "low", "high", "patients", "flagged",
                 "seconds"]  # fmt: skip
ENSEMBLE_NAME = "greedy ensemble"


@dataclass
class CamFindings:
    """What the CAMs of one model say, with the files they were drawn into."""

    segments: pd.DataFrame  # patient, view, target, explains, segment_1..17
    bullseyes: dict[str, np.ndarray]  # predicted class -> mean CAM per segment (17,)
    bullseye_counts: dict[str, int]
    territories: pd.DataFrame  # patient, true/hottest territory, LAD/RCA/LCx means, match
    match_rate: float | None  # hottest territory == true defect territory
    match_baseline: float | None  # always the most common defect territory
    match_patients: int
    panels: dict[str, Path]  # patient -> overlay panel PNG
    misclassified: tuple[str, ...]
    bullseye_files: dict[str, Path]
    # whether the CAMs can be trusted: localisation against a reader's annotations,
    # faithfulness (ROAD) and the randomisation check; one row per view, check and
    # attribution (columns of the `final_explanations` table, less search, trial, seed)
    checks: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHECK_COLUMNS))


@dataclass(frozen=True)
class Conformal:
    """A model's class-conditional prediction sets at level 1 - `alpha`, calibrated on its
    out-of-fold (or validation) patients, and how they did on the test patients."""

    alpha: float
    calibration: dict[str, int]  # class -> calibration patients
    too_few: tuple[str, ...]  # classes too small to be left out of any set at alpha
    sets: np.ndarray  # (test patients, classes) bool
    coverage: pd.DataFrame  # per class and `all`: `results.conformal.coverage_table`
    calibrated: ConformalSets  # what the exported model predicts sets with


@dataclass
class FinalModel:
    """A winner retrained with one seed, tested once and exported."""

    trial: dict[str, Any]  # its row of the trials table
    seed: int
    folder: Path
    figures: EvaluationFigures
    validation: dict[str, Any]
    test_ids: tuple[str, ...]
    test_probabilities: np.ndarray
    test_predicted: np.ndarray
    cams: CamFindings
    subgroups: list[dict]
    plots: dict[str, Path]  # roc, calibration, confusion PNGs
    cross_validated: EvaluationFigures | None = None  # out-of-fold, for a fold ensemble
    members: int = 1  # fold models in the exported ensemble
    refit: bool = False  # one model retrained on every training patient
    conformal: Conformal | None = None  # its prediction sets on the test patients


@dataclass(frozen=True)
class BaselineModel:
    """The fitted baseline's predictions: out-of-fold on the training patients (for the
    threshold and the cross-validated figures) and on the test patients."""

    views: tuple[str, ...]
    threshold: float | None
    train_ids: tuple[str, ...]
    train_labels: np.ndarray
    train_probabilities: np.ndarray  # cross-validated: each patient by a model without it
    test_ids: tuple[str, ...]
    test_probabilities: np.ndarray
    test_predicted: np.ndarray
    folds: int


@dataclass(frozen=True)
class GreedyEnsemble:
    """The selection over the search's trials and what it was chosen on."""

    selection: EnsembleSelection
    members: dict[str, dict]  # trial id -> its trials row, the picked ones, in pick order
    labels: np.ndarray  # the held-out patients the search kept predictions of
    probabilities: np.ndarray  # the ensemble's probabilities of them
    candidates: int
    best_single_loss: float  # the best candidate's loss alone

    @property
    def backbones(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(row["backbone"] for row in self.members.values()))


@dataclass(frozen=True)
class EnsembleFinal:
    """The finalized ensemble: its members' retrained test predictions, weighted."""

    ensemble: GreedyEnsemble
    folder: Path
    test_ids: tuple[str, ...]
    test_probabilities: np.ndarray
    test_predicted: np.ndarray
    threshold: float | None
    figures: EvaluationFigures
    member_folders: dict[str, Path]


@dataclass(frozen=True)
class Comparisons:
    """The baseline's test figures and the paired comparisons' rows (`comparisons` table)."""

    baseline: EvaluationFigures
    baseline_views: tuple[str, ...]
    rows: list[dict]
    baseline_model: BaselineModel | None = None
    ensemble: EnsembleFinal | None = None


@dataclass(frozen=True)
class FinalizedSearch:
    """One search finalized: its models, comparisons, report and checklist, the labels of
    its patients and how it was split (a nested run pools several of these)."""

    name: str
    finals: list[FinalModel]
    comparisons: Comparisons
    report: Path
    checklist: list
    class_names: tuple[str, ...]
    labels: dict[str, int]  # patient id -> class index, every patient of the data set
    scheme: str  # the split, in short ("75/0/25, 3 folds", ...)


@dataclass(frozen=True)
class PooledModel:
    """One model's predictions of every patient, each from the outer fold that held it
    out, and their figures."""

    name: str
    backbone: str | None
    mode: str | None
    trials: tuple[str | None, ...]  # the trial chosen in each outer fold (None: baseline)
    ids: tuple[str, ...]
    outer: np.ndarray  # each patient's outer fold
    labels: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    figures: EvaluationFigures


def first_seeds(finals: Sequence[FinalModel]) -> list[FinalModel]:
    """Each winner's first-seed model, in the winners' order (best first): the model that
    represents a winner wherever one per winner is needed."""
    first: dict[str, FinalModel] = {}
    for final in finals:
        first.setdefault(final.trial["trial_id"], final)
    return list(first.values())
