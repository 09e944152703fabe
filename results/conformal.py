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

A calibration travels with its model: `to_json` gives what the model folder stores (the
level, the seed and each class's calibration scores, exact: JSON writes a float so that
it reads back the same, so a loaded calibration gives the very sets it gave when made)
and `ConformalSets.from_json` reads it back, refusing a record that is not one with the
field and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from crepes import ConformalClassifier

from results.intervals import clopper_pearson

__all__ = ["ConformalSets", "calibrate_sets", "coverage_table", "least_calibration"]


FORMAT = "polarmap-conformal/1"


@dataclass(frozen=True)
class ConformalSets:
    """Calibrated class-conditional sets.

    Args:
        alpha: the miscoverage level (0.1: each class covered at least 90 % of the time).
        scores: per class index, its calibration patients' non-conformity scores (1 minus
            the probability of their own class), sorted.
        seed: passed to crepes (its p-values here are not smoothed: nothing is drawn).
    """

    alpha: float
    scores: tuple[tuple[float, ...], ...] = field(repr=False)
    seed: int

    @property
    def counts(self) -> tuple[int, ...]:
        """Calibration patients per class index."""
        return tuple(len(s) for s in self.scores)

    def predict(self, probabilities: np.ndarray) -> np.ndarray:
        """n x k bool: whether each class is in each patient's set (`probabilities`:
        n x k, the model's class probabilities)."""
        probabilities = np.asarray(probabilities, dtype=float)
        scores = 1.0 - probabilities
        count, classes = probabilities.shape
        classifier = ConformalClassifier().fit(
            np.array([s for own in self.scores for s in own], dtype=float),
            bins=np.repeat(np.arange(len(self.scores)), self.counts), seed=self.seed,
        )  # fmt: skip
        sets = np.zeros((count, classes), dtype=bool)
        for index in range(classes):
            sets[:, index] = classifier.predict_set(
                scores, bins=np.full(count, index), confidence=1 - self.alpha,
                smoothing=False, seed=self.seed,
            )[:, index].astype(bool)  # fmt: skip
        return sets

    def too_few(self) -> list[int]:
        """The classes with too few calibration patients to be ruled out at `alpha`."""
        least = least_calibration(self.alpha)
        return [index for index, count in enumerate(self.counts) if count < least]

    def to_json(self) -> dict[str, Any]:
        """A JSON object that `from_json` reads back into these very sets."""
        return {
            "format": FORMAT,
            "alpha": self.alpha,
            "seed": self.seed,
            "counts": list(self.counts),
            "scores": [list(own) for own in self.scores],
        }

    @classmethod
    def from_json(cls, record: Any) -> ConformalSets:
        """The sets `to_json` wrote.

        Raises:
            ValueError: naming the field that is missing or not what was expected.
        """
        if not isinstance(record, dict):
            raise ValueError(f"conformal calibration: expected a JSON object, got {_kind(record)}")
        if record.get("format") != FORMAT:
            raise ValueError(f"conformal format: expected {FORMAT!r}, got {record.get('format')!r}")
        alpha, seed = _field(record, "alpha"), _field(record, "seed")
        if not _is_number(alpha) or not 0 < alpha < 1:
            raise ValueError(f"conformal alpha: expected a level between 0 and 1, got {alpha!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"conformal seed: expected an integer, got {seed!r}")
        scores = _field(record, "scores")
        if not isinstance(scores, list) or not scores or not all(
            isinstance(own, list) and all(_is_number(s) and math.isfinite(s) for s in own)
            for own in scores
        ):  # fmt: skip
            raise ValueError(
                "conformal scores: expected one list of finite numbers per class, got "
                f"{_kind(scores)}"
            )
        counts = _field(record, "counts")
        if counts != [len(own) for own in scores]:
            raise ValueError(
                f"conformal counts: expected the number of scores of each class, "
                f"{[len(own) for own in scores]}, got {counts!r}"
            )
        return cls(float(alpha), tuple(tuple(sorted(map(float, own))) for own in scores), seed)


def _field(record: dict[str, Any], name: str) -> Any:
    if name not in record:
        raise ValueError(f"conformal {name}: missing")
    return record[name]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """What a JSON value is, in a few words (a list of scores would be too long to show)."""
    if isinstance(value, list):
        return f"a list of {len(value)}" if value else "an empty list"
    return repr(value) if value is None or _is_number(value) else type(value).__name__


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
        ValueError: alpha outside (0, 1), shapes that disagree, a probability that is not
            a number, or a label with no column.
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
    if not np.isfinite(probabilities).all():
        raise ValueError("calibration probabilities: expected finite numbers, got NaN or inf")
    classes = probabilities.shape[1]
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"calibration labels: expected class indices 0-{classes - 1}")
    scores = 1.0 - probabilities[np.arange(len(labels)), labels]
    per_class = tuple(
        tuple(sorted(float(s) for s in scores[labels == index])) for index in range(classes)
    )
    return ConformalSets(float(alpha), per_class, seed)


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
