"""Class-conditional (Mondrian) split-conformal prediction sets: for each patient, the
classes a model cannot rule out at level `alpha`, calibrated so that each class's
patients are covered at least 1 - alpha of the time.

A model picked on 87-218 patients should say when it does not know. Split conformal
prediction does so without assumptions on the model: a patient's non-conformity for a
class is 1 minus the model's probability of that class, and a class enters the set when
that score is no larger than most of the calibration patients' scores for their own
class. Calibrating within each class (Mondrian) keeps the promise per class: a rare
class is not covered at the common classes' expense. The calibration patients are the
winners' out-of-fold predictions, which a cross-validated search already holds, one per
patient, from models that never saw them.

crepes (Boström 2024) computes the p-values and sets: it does class-conditional
calibration directly from scores, and needs only numpy, pandas and scipy; MAPIE's class-conditional
classification goes through its own estimator wrappers, which our stored probabilities
do not need. The p-values are not smoothed: a smoothed set breaks ties at random, so a
patient's set would depend on a draw; unsmoothed sets are the same every time and cover
at least 1 - alpha (by at most 1 / (n + 1) more).

A class with fewer than 1/alpha - 1 calibration patients cannot be ruled out at that
level at all (its set-membership quantile is infinite): `too_few` names such classes so
that finalize can warn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from crepes import ConformalClassifier

from results.intervals import clopper_pearson

__all__ = ["ConformalSets", "calibrate_sets", "coverage_table", "least_calibration"]


@dataclass(frozen=True)
class ConformalSets:
    """Calibrated class-conditional sets.

    Args:
        alpha: the miscoverage level (0.1: each class covered at least 90 % of the time).
        counts: calibration patients per class index.
        seed: passed to crepes (its p-values here are not smoothed: nothing is drawn).
    """

    alpha: float
    counts: tuple[int, ...]
    classifier: ConformalClassifier
    seed: int

    def predict(self, probabilities: np.ndarray) -> np.ndarray:
        """n x k bool: whether each class is in each patient's set (`probabilities`:
        n x k, the model's class probabilities)."""
        probabilities = np.asarray(probabilities, dtype=float)
        scores = 1.0 - probabilities
        count, classes = probabilities.shape
        sets = np.zeros((count, classes), dtype=bool)
        for index in range(classes):
            sets[:, index] = self.classifier.predict_set(
                scores, bins=np.full(count, index), confidence=1 - self.alpha,
                smoothing=False, seed=self.seed,
            )[:, index].astype(bool)  # fmt: skip
        return sets

    def too_few(self) -> list[int]:
        """The classes with too few calibration patients to be ruled out at `alpha`."""
        least = least_calibration(self.alpha)
        return [index for index, count in enumerate(self.counts) if count < least]


def least_calibration(alpha: float) -> int:
    """The fewest calibration patients of a class with which it can be left out of a set
    at level `alpha`: n such that ceil((n + 1)(1 - alpha)) <= n."""
    return max(1, math.ceil(1 / alpha) - 1)


def calibrate_sets(
    probabilities: np.ndarray, labels: np.ndarray, alpha: float = 0.1, seed: int = 0
) -> ConformalSets:
    """Class-conditional sets calibrated on patients' out-of-fold `probabilities`
    (n x k) and true class indices `labels` (n,).

    Raises:
        ValueError: alpha outside (0, 1), shapes that disagree, or a label with no
            column.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    labels = np.asarray(labels, dtype=int)
    if not 0 < alpha < 1:
        raise ValueError(f"conformal alpha: expected a level between 0 and 1, got {alpha:g}")
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(
            f"calibration: {len(labels)} labels for probabilities of shape "
            f"{probabilities.shape}; expected one row of class probabilities per label"
        )
    classes = probabilities.shape[1]
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"calibration labels: expected class indices 0-{classes - 1}")
    scores = 1.0 - probabilities[np.arange(len(labels)), labels]
    classifier = ConformalClassifier()
    classifier.fit(scores, bins=labels, seed=seed)
    counts = tuple(int(c) for c in np.bincount(labels, minlength=classes))
    return ConformalSets(alpha, counts, classifier, seed)


def coverage_table(sets: np.ndarray, labels: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Per class (and `all`): test patients, those whose set holds their class, the
    coverage with its exact 95 % interval, the mean set size and the share of sets with
    one class (of that class's patients)."""
    sets = np.asarray(sets, dtype=bool)
    labels = np.asarray(labels, dtype=int)
    covered = sets[np.arange(len(labels)), labels]
    size = sets.sum(axis=1)
    rows = []
    for name, these in [*((c, labels == i) for i, c in enumerate(classes)),
                        ("all", np.ones(len(labels), bool))]:  # fmt: skip
        n, hits = int(these.sum()), int(covered[these].sum())
        low, high = clopper_pearson(hits, n) if n else (np.nan, np.nan)
        rows.append({
            "class": name, "patients": n, "covered": hits,
            "coverage": hits / n if n else np.nan,
            "coverage_lower": float(low), "coverage_upper": float(high),
            "mean_set_size": float(size[these].mean()) if n else np.nan,
            "singleton_share": float((size[these] == 1).mean()) if n else np.nan,
        })  # fmt: skip
    return pd.DataFrame(rows)
