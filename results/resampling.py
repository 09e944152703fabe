"""Figures of many resampled or permuted test sets at once.

A bootstrap or a permutation test scores a model on thousands of variants of one test set.
Scoring them one call at a time cost finalize about 25,000 metric calls in the demo; here
every variant is a row of index or mask arrays and each figure is computed for all rows in
one pass (confusion counts by `bincount`, AUCs by ranks along the rows). The figures are
exactly those of `trainables.metrics.classification_metrics` on each row, plus the
negative predictive value ("npv") it does not compute.

- `stratified_draws`: bootstrap draws that resample within each class, so that every draw
  holds every class at its size (no draw is lost, none is conditioned on).
- `swap_masks`: random swaps of two models' outputs, patient by patient (a permutation
  test's null).
- `batched_figures`: the named figures of each row; `batched_ece` their calibration error.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from trainables.metrics import METRICS, PER_CLASS_METRICS

__all__ = [
    "FIGURES",
    "PER_CLASS_FIGURES",
    "batched_ece",
    "batched_figures",
    "parse_figure",
    "stratified_draws",
    "swap_masks",
]

PER_CLASS_FIGURES = (*PER_CLASS_METRICS, "npv")
FIGURES = (*METRICS, "npv")
_PER_CLASS = re.compile(r"^(\w+)\[(\d+)\]$")  # "sensitivity[1]": class 1's figure


def parse_figure(name: str, classes: int) -> tuple[str, int | None]:
    """("sensitivity", None) for a macro figure, ("sensitivity", 1) for "sensitivity[1]";
    ValueError naming what was expected otherwise."""
    match = _PER_CLASS.match(name)
    if match is None:
        if name not in FIGURES:
            raise ValueError(f"metric {name!r}: expected one of {FIGURES} or 'name[class]'")
        return name, None
    base, k = match[1], int(match[2])
    if base not in PER_CLASS_FIGURES or k >= classes:
        raise ValueError(
            f"metric {name!r}: expected one of {PER_CLASS_FIGURES} and a class below {classes}"
        )
    return base, k


def stratified_draws(labels: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) patient indices: each draw takes as many patients of each class as
    the labels hold, with replacement from that class, in the labels' order of classes."""
    labels = np.asarray(labels)
    draws = np.empty((resamples, labels.size), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        draws[:, members] = members[rng.integers(0, members.size, (resamples, members.size))]
    return draws


def swap_masks(patients: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, patients) booleans, each patient's two models' outputs swapped with
    probability 1/2."""
    return rng.random((resamples, patients)) < 0.5


def batched_figures(
    labels: np.ndarray,
    probabilities: np.ndarray,
    predicted: np.ndarray,
    names: Sequence[tuple[str, int | None]],
) -> np.ndarray:
    """(rows, len(names)) figures, one row per variant of a test set.

    Args:
        labels: (rows, n) true classes (or (n,), the same for every row).
        probabilities: (rows, n, classes) class probabilities.
        predicted: (rows, n) predicted classes.
        names: parsed figure names (`parse_figure`).
    """
    probabilities = np.asarray(probabilities, dtype=float)
    rows, n, classes = probabilities.shape
    labels = np.broadcast_to(np.asarray(labels), (rows, n))
    predicted = np.asarray(predicted)
    cells = (np.arange(rows)[:, None] * classes + labels) * classes + predicted
    matrix = np.bincount(cells.ravel(), minlength=rows * classes * classes)
    matrix = matrix.reshape(rows, classes, classes).astype(float)
    true_pos = np.diagonal(matrix, axis1=1, axis2=2)
    actual, called = matrix.sum(axis=2), matrix.sum(axis=1)
    true_neg = n - actual - called + true_pos
    per_class = {
        "sensitivity": _ratio(true_pos, actual),
        "specificity": _ratio(true_neg, n - actual),
        "precision": _ratio(true_pos, called),
        "npv": _ratio(true_neg, n - called),
    }
    per_class["f1"] = _ratio(
        2 * per_class["precision"] * per_class["sensitivity"],
        per_class["precision"] + per_class["sensitivity"],
    )
    if any(base == "roc_auc" for base, _ in names):
        per_class["roc_auc"] = _aucs(labels, probabilities)
    present, counted = actual > 0, (actual > 0) | (called > 0)
    out = np.empty((rows, len(names)))
    for column, (base, k) in enumerate(names):
        if k is not None:
            out[:, column] = per_class[base][:, k]
        elif base == "accuracy":
            out[:, column] = true_pos.sum(axis=1) / n
        elif base == "balanced_accuracy":
            out[:, column] = _masked_mean(per_class["sensitivity"], present)
        elif base == "roc_auc":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # no class to rank
                out[:, column] = np.nanmean(per_class["roc_auc"], axis=1)
        else:  # as scikit-learn's macro mean: the classes in the labels or the predictions
            out[:, column] = _masked_mean(per_class[base], counted)
    return out


def _aucs(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """(rows, classes) one-vs-rest AUCs (Mann-Whitney, ties half); NaN without both."""
    rows, n, classes = probabilities.shape
    out = np.full((rows, classes), np.nan)
    for c in range(classes):
        positive = labels == c
        m = positive.sum(axis=1).astype(float)
        ranks = rankdata(probabilities[:, :, c], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = ((ranks * positive).sum(axis=1) - m * (m + 1) / 2) / (m * (n - m))
        out[:, c] = np.where((m > 0) & (m < n), auc, np.nan)
    return out


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over each row's masked classes; 0 for a row with none (as the metrics do)."""
    count = mask.sum(axis=1)
    total = np.where(mask, values, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def batched_ece(
    labels: np.ndarray, probabilities: np.ndarray, predicted: np.ndarray, bins: int = 10
) -> np.ndarray:
    """(rows,) expected calibration error of each row, as `search.inference.evaluate`'s
    `calibration`: the predicted class's probability in equal-width bins, each bin's gap
    between mean confidence and accuracy weighted by its share of the patients."""
    probabilities = np.asarray(probabilities, dtype=float)
    rows, n, _ = probabilities.shape
    labels = np.broadcast_to(np.asarray(labels), (rows, n))
    confidence = np.take_along_axis(probabilities, np.asarray(predicted)[..., None], 2)[..., 0]
    correct = (predicted == labels).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    cells = (np.arange(rows)[:, None] * bins + which).ravel()
    size = rows * bins
    confidence_sum = np.bincount(cells, confidence.ravel(), size).reshape(rows, bins)
    correct_sum = np.bincount(cells, correct.ravel(), size).reshape(rows, bins)
    return np.abs(confidence_sum - correct_sum).sum(axis=1) / n
