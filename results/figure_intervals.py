"""95 % intervals of one model's figures on a set of patients, each by the method its
figure allows, so that no interval has less width than its patients leave.

- Proportions (accuracy; each class's sensitivity, specificity, precision (PPV) and NPV):
  the exact Clopper-Pearson interval, with the counts kept beside it ("0 / 1").
- Balanced accuracy and the other macro proportions (sensitivity, specificity,
  precision): the MOVER interval over the classes' Clopper-Pearson intervals. At the
  demo's mix it covered 98 % (balanced accuracy) and 97 % (macro specificity); over
  Wilson intervals 91 %, and a bootstrap within each class 50 % and 79 %
  (bench/paired_tests.py).
- One class's ROC AUC: Newcombe's score interval from its positives and negatives.
- The macro ROC AUC: the wider of the MOVER interval over the classes' Newcombe intervals
  (which carries a small class's doubt) and the stratified bootstrap's (which carries the
  classes' dependence); either alone covered 65-87 % at the demo's mix, the two together
  91 %, and 95 % on a balanced mix.
- Figures without a closed form (F1, macro and per class; the calibration error): the
  percentile interval of a bootstrap stratified by class (every draw holds every class at
  its size), computed in one vectorised pass. Where every draw gives the same value the
  bootstrap cannot bound the figure, and no interval is given rather than one of no width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from results.intervals import auc_interval, clopper_pearson, mover_mean
from results.resampling import batched_ece, batched_figures, stratified_draws

__all__ = ["CLOSED_FORM", "FigureIntervals", "figure_intervals"]

CLOPPER_PEARSON = "Clopper-Pearson exact"
MOVER_EXACT = "MOVER of per-class Clopper-Pearson"
NEWCOMBE_AUC = "Newcombe AUC score"
BOOTSTRAP = "stratified bootstrap"
ENVELOPE = "wider of MOVER of per-class Newcombe AUC and stratified bootstrap"
CLOSED_FORM = (CLOPPER_PEARSON, MOVER_EXACT, NEWCOMBE_AUC)


@dataclass(frozen=True)
class FigureIntervals:
    """`intervals`: a figure's (low, high), keyed by its macro name ("accuracy", "ece") or
    "<metric>/<class>"; a figure without one is absent. `counts`: a proportion's
    (numerator, denominator). `methods`: how each interval was made."""

    intervals: dict[str, tuple[float, float]]
    counts: dict[str, tuple[int, int]]
    methods: dict[str, str]


def figure_intervals(
    labels: np.ndarray,
    probabilities: np.ndarray,
    predicted: np.ndarray,
    class_names: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
) -> FigureIntervals:
    """The intervals of every figure of one model (`trainables.metrics` names, "npv" per
    class and "ece"). Closed forms always; bootstrap ones when `resamples` > 0."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    probabilities = np.asarray(probabilities, dtype=float)
    classes = len(class_names)
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    true_pos, actual, called = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    n = labels.size
    true_neg = n - actual - called + true_pos
    out = FigureIntervals({}, {}, {})

    _proportion(out, "accuracy", int(true_pos.sum()), n)
    fractions = {
        "sensitivity": (true_pos, actual), "specificity": (true_neg, n - actual),
        "precision": (true_pos, called), "npv": (true_neg, n - called),
    }  # fmt: skip
    for metric, (numerators, denominators) in fractions.items():
        for c, name in enumerate(class_names):
            _proportion(out, f"{metric}/{name}", int(numerators[c]), int(denominators[c]))
    aucs = batched_figures(labels, probabilities[None], predicted[None],
                           [("roc_auc", c) for c in range(classes)])[0]  # fmt: skip
    auc_intervals = [auc_interval(aucs[c], int(actual[c]), int(n - actual[c]))
                     for c in range(classes)]  # fmt: skip
    for name, interval in zip(class_names, auc_intervals, strict=True):
        _keep(out, f"roc_auc/{name}", interval, NEWCOMBE_AUC)

    present, counted = actual > 0, (actual > 0) | (called > 0)
    macro = {  # as the metrics' macro means: balanced accuracy over the classes present,
        "balanced_accuracy": ("sensitivity", present),  # the others over those present
        "sensitivity": ("sensitivity", counted),  # or called
        "specificity": ("specificity", counted),
        "precision": ("precision", counted),
    }
    for key, (metric, classes_in) in macro.items():
        numerators, denominators = fractions[metric]
        interval = _macro_proportion(numerators[classes_in], denominators[classes_in])
        _keep(out, key, interval, MOVER_EXACT)
    bootstrapped = [("f1", None), ("roc_auc", None)] + [("f1", c) for c in range(classes)]
    if resamples > 0:
        _bootstrap(out, labels, probabilities, predicted, class_names, bootstrapped,
                   resamples, seed)  # fmt: skip
    ranked = ~np.isnan(aucs)
    closed = _mover(aucs[ranked], *np.array(auc_intervals)[ranked].T)
    booted = out.intervals.pop("roc_auc", closed)
    out.methods.pop("roc_auc", None)
    envelope = (min(closed[0], booted[0]), max(closed[1], booted[1]))
    _keep(
        out, "roc_auc", envelope, ENVELOPE if resamples > 0 else "MOVER of per-class Newcombe AUC"
    )
    return out


def _proportion(out: FigureIntervals, key: str, numerator: int, denominator: int) -> None:
    out.counts[key] = (numerator, denominator)
    low, high = clopper_pearson(numerator, denominator)
    _keep(out, key, (float(low), float(high)), CLOPPER_PEARSON)


def _macro_proportion(numerators: np.ndarray, denominators: np.ndarray) -> tuple[float, float]:
    """The MOVER interval of a mean of the classes' proportions over their exact intervals;
    a class with no denominator counts as 0 (as the metrics count it), bounded by [0, 1]."""
    defined = denominators > 0
    estimates = np.where(defined, numerators / np.maximum(denominators, 1), 0.0)
    lows, highs = clopper_pearson(numerators, np.maximum(denominators, 1))
    lows, highs = np.where(defined, lows, 0.0), np.where(defined, highs, 1.0)
    return _mover(estimates, lows, highs)


def _mover(estimates: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> tuple[float, float]:
    """The mean's MOVER interval over the classes' own, within [0, 1]."""
    if estimates.size == 0:
        return np.nan, np.nan
    low, high = mover_mean(estimates, lows, highs)
    return max(low, 0.0), min(high, 1.0)


def _bootstrap(out, labels, probabilities, predicted, class_names, names, resamples, seed):
    """Percentile intervals of `names` and the calibration error from one set of draws."""
    draws = stratified_draws(labels, resamples, np.random.default_rng(seed))
    y, p, q = labels[draws], probabilities[draws], predicted[draws]
    values = np.column_stack([batched_figures(y, p, q, names), batched_ece(y, p, q)])
    keys = [base if k is None else f"{base}/{class_names[k]}" for base, k in names] + ["ece"]
    for key, column in zip(keys, values.T, strict=True):
        column = column[~np.isnan(column)]
        if column.size:
            low, high = np.percentile(column, [2.5, 97.5])
            _keep(out, key, (float(low), float(high)), BOOTSTRAP)


def _keep(out: FigureIntervals, key: str, interval: tuple[float, float], method: str) -> None:
    """Record an interval that has a width; one of no width (or NaN) bounds nothing."""
    low, high = interval
    if low == low and high == high and high - low > 1e-12:
        out.intervals[key] = (low, high)
        out.methods[key] = method
