"""Classification metrics of the seeds, macro-averaged and per class (one-vs-rest).

Plain numpy, so an epoch's evaluation costs microseconds and needs no scikit-learn import;
the tests check every figure against scikit-learn. Where a figure is undefined (a class
never predicted, or absent from the labels) it follows scikit-learn: precision, recall and
F1 are 0; a one-vs-rest AUC is NaN and left out of the macro mean. Macro means run over
the classes in the labels or the predictions, as scikit-learn's do.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata

__all__ = ["METRICS", "PER_CLASS_METRICS", "classification_metrics", "confusion_matrix"]

PER_CLASS_METRICS = ("sensitivity", "specificity", "precision", "f1", "roc_auc")
METRICS = ("accuracy", "balanced_accuracy", *PER_CLASS_METRICS)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """num_classes x num_classes counts; rows are true classes, columns predictions."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
    return matrix


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, predicted: np.ndarray | None = None
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Metrics of predicted class probabilities against true labels.

    Args:
        labels: (n,) true class indices.
        probabilities: (n, classes) predicted probabilities (ROC AUC ranks them).
        predicted: (n,) predicted classes; default the argmax (a binary model's chosen
            threshold gives others).

    Returns:
        Macro figures by name (`accuracy`, `balanced_accuracy` and the macro mean of each
        per-class metric), and per-class arrays for `PER_CLASS_METRICS`.
    """
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=float)
    num_classes = probabilities.shape[1]
    if predicted is None:
        predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted, num_classes)
    true_pos = np.diag(matrix).astype(float)
    actual = matrix.sum(axis=1).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    total = float(matrix.sum())
    true_neg = total - actual - predicted + true_pos

    sensitivity = _ratio(true_pos, actual)
    precision = _ratio(true_pos, predicted)
    per_class = {
        "sensitivity": sensitivity,
        "specificity": _ratio(true_neg, total - actual),
        "precision": precision,
        "f1": _ratio(2 * precision * sensitivity, precision + sensitivity),
        "roc_auc": np.array([_auc(labels == c, probabilities[:, c]) for c in range(num_classes)]),
    }
    present = actual > 0
    macro = {
        "accuracy": float(true_pos.sum() / total) if total else 0.0,
        # scikit-learn's balanced accuracy: mean recall over the classes present
        "balanced_accuracy": float(sensitivity[present].mean()) if present.any() else 0.0,
    }
    # As scikit-learn's macro average: over the classes that occur in the labels or the
    # predictions, so a class absent from a small set (or a bootstrap resample) does not
    # count as a 0.
    counted = present | (predicted > 0)
    for name in ("sensitivity", "specificity", "precision", "f1"):
        macro[name] = float(per_class[name][counted].mean()) if counted.any() else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN AUC: no class to rank
        macro["roc_auc"] = float(np.nanmean(per_class["roc_auc"]))
    return macro, per_class


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN without both classes."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
