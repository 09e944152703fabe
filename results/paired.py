"""Paired comparisons of two classifiers evaluated on the same patients.

A test set of a few dozen patients supports few claims: two models' balanced accuracies may
differ by ten points and the data still not say which is better. Both models saw the same
patients, so their errors are correlated; comparing them patient by patient (a paired test)
cancels what they share and is far sharper than setting two separate intervals side by side.
These functions give, for each figure, the difference a - b, its 95 % interval and a
two-sided p-value, so a report can say which differences the data support and which not.

- `paired_bootstrap`: resamples patients with replacement, the same patients for both models
  in each draw, and recomputes the project's figures (`trainables.metrics`) on each draw.
- `delong_test`: DeLong's test for two correlated ROC AUCs (DeLong, DeLong & Clarke-Pearson
  1988) in Sun & Xu's fast midrank form (2014).
- `compare_models`: DeLong for a single ROC AUC (the binary AUC, or one class's one-vs-rest
  AUC), the paired bootstrap for everything else, including the macro AUC of more than two
  classes, to which DeLong does not apply.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.stats import rankdata

from trainables.metrics import METRICS, PER_CLASS_METRICS, classification_metrics

__all__ = [
    "DEFAULT_METRICS",
    "DeLong",
    "PairedDifference",
    "compare_models",
    "delong_test",
    "paired_bootstrap",
]

DEFAULT_METRICS = ("balanced_accuracy", "roc_auc", "sensitivity")
Z_95 = 1.959963984540054  # standard normal 97.5th percentile: a two-sided 95 % interval
_PER_CLASS = re.compile(r"^(\w+)\[(\d+)\]$")  # "sensitivity[1]": class 1's figure


@dataclass(frozen=True)
class PairedDifference:
    """One figure of models a and b on the same patients, and what the data say of a - b.

    `metric` is a macro figure of `trainables.metrics.METRICS` ("balanced_accuracy") or one
    class's figure ("sensitivity[1]"). `a` and `b` are the figures on all patients, as
    `classification_metrics` gives them. `low` and `high` bound the 95 % interval of the
    difference, NaN where it is undefined (a class absent, so no AUC). `resamples` is the
    number of bootstrap draws the interval rests on (0 for DeLong).
    """

    metric: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float
    method: str  # "paired bootstrap" or "DeLong"
    patients: int
    resamples: int


class DeLong(NamedTuple):
    """DeLong's test of two correlated AUCs: the AUCs, the variance of auc_a - auc_b and the
    two-sided p-value of a zero difference (NaN where a class has fewer than two patients)."""

    auc_a: float
    auc_b: float
    variance: float
    p_value: float


def paired_bootstrap(
    labels: np.ndarray,
    probabilities_a: np.ndarray,
    probabilities_b: np.ndarray,
    predicted_a: np.ndarray | None = None,
    predicted_b: np.ndarray | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    resamples: int = 2000,
    seed: int = 0,
) -> list[PairedDifference]:
    """Paired bootstrap of the differences a - b of `metrics`, one row per metric.

    Each draw resamples the patients with replacement and scores both models on the same
    draw, so the interval reflects the variation of the difference, not of each model. A
    draw that lacks a class present among the patients is left out for every metric: its
    AUC would be undefined and its macro figures would average over other classes. The
    interval is the 2.5th to 97.5th percentile of the drawn differences. The p-value is
    2 * min(k_le + 1, k_ge + 1) / (B + 1), clipped to 1, where B draws were kept and k_le
    and k_ge of them have a difference <= 0 and >= 0: the +1 (counting the observed data as
    one draw) keeps it above 0, which B draws cannot show; it is below 0.05 about when the
    interval excludes 0. Two models whose figures agree on every draw get p = 1.

    Args:
        labels: (n,) true class indices.
        probabilities_a, probabilities_b: (n, classes) each model's class probabilities.
        predicted_a, predicted_b: (n,) predicted classes; default the argmax (a binary model
            with its own threshold passes its own).
        metrics: figure names; "name[k]" is class k's figure of a per-class metric. On two
            classes the macro "sensitivity" equals the balanced accuracy; "sensitivity[1]"
            is the positive class's.
        resamples: number of draws.
        seed: seed of the draws; the same seed gives the same result.

    Raises:
        ValueError: shapes that do not match the labels, or an unknown metric.
    """
    labels, probabilities, predicted = _checked(
        labels, (probabilities_a, probabilities_b), (predicted_a, predicted_b)
    )
    if resamples < 1:
        raise ValueError(f"resamples: expected at least 1, got {resamples}")
    names = _parsed(metrics, probabilities[0].shape[1])
    a, b = (_figures(labels, p, q, names) for p, q in zip(probabilities, predicted, strict=True))
    draws = _draws(labels, probabilities, predicted, names, resamples, seed)
    rows = []
    for column, metric in enumerate(metrics):
        differences = draws[:, column][~np.isnan(draws[:, column])]
        low, high, p_value = _percentile_test(differences)
        rows.append(
            PairedDifference(
                metric=metric,
                a=float(a[column]),
                b=float(b[column]),
                difference=float(a[column] - b[column]),
                low=low,
                high=high,
                p_value=p_value,
                method="paired bootstrap",
                patients=labels.size,
                resamples=differences.size,
            )
        )
    return rows


def delong_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> DeLong:
    """DeLong's test that two scores of the same patients have the same ROC AUC.

    The variance of auc_a - auc_b comes from the structural components (each patient's share
    of the AUC), S10 over the positives and S01 over the negatives: var = (var of the
    positives' component differences) / m + (var of the negatives') / n, which is
    [1, -1] (S10 / m + S01 / n) [1, -1]^T. The components are computed from midranks (Sun &
    Xu 2014), O(n log n), ties counted half. The p-value is two-sided from the normal
    distribution. It applies to one AUC of each model, not to a mean of several (a macro
    AUC over more than two classes).

    Args:
        labels: (n,) 1 for a positive patient, 0 for a negative one (or booleans).
        scores_a, scores_b: (n,) each model's score; higher means more likely positive.

    Returns:
        The two AUCs (NaN without both classes), the variance of their difference and the
        p-value (NaN with fewer than two positives or negatives). Identical scores give
        variance 0 and p = 1.

    Raises:
        ValueError: labels other than 0 and 1, or lengths that differ.
    """
    labels = np.asarray(labels)
    scores = [np.asarray(s, dtype=float) for s in (scores_a, scores_b)]
    if labels.ndim != 1 or not np.isin(labels, (0, 1)).all():
        raise ValueError("labels: expected a 1-D array of 0 (negative) and 1 (positive)")
    for name, score in zip(("scores_a", "scores_b"), scores, strict=True):
        if score.shape != labels.shape:
            raise ValueError(f"{name}: expected shape {labels.shape}, got {score.shape}")
    positive = labels == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        return DeLong(math.nan, math.nan, math.nan, math.nan)
    (auc_a, v10_a, v01_a), (auc_b, v10_b, v01_b) = (_components(s, positive) for s in scores)
    if m < 2 or n < 2:
        return DeLong(auc_a, auc_b, math.nan, math.nan)
    variance = float(np.var(v10_a - v10_b, ddof=1) / m + np.var(v01_a - v01_b, ddof=1) / n)
    return DeLong(auc_a, auc_b, variance, _normal_p(auc_a - auc_b, variance))


def compare_models(
    labels: np.ndarray,
    probabilities_a: np.ndarray,
    probabilities_b: np.ndarray,
    predicted_a: np.ndarray | None = None,
    predicted_b: np.ndarray | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    resamples: int = 2000,
    seed: int = 0,
) -> list[PairedDifference]:
    """Models a and b compared on the same patients, one row per metric, in order.

    A single ROC AUC gets DeLong's test (`delong_test`), which needs no resampling: the
    binary "roc_auc" (scores: the probability of class 1) and any class's "roc_auc[k]"
    (scores: the probability of class k). Its interval is the normal one, difference
    ± 1.959964 * SE. The macro "roc_auc" of more than two classes is a mean of AUCs, to
    which DeLong does not apply: it gets the paired bootstrap, as every other figure does
    (`paired_bootstrap`; the arguments are the same).

    Raises:
        ValueError: as `paired_bootstrap`; also binary probabilities whose rows do not sum
            to 1, for which the class-1 AUC is not the project's macro AUC.
    """
    labels, probabilities, predicted = _checked(
        labels, (probabilities_a, probabilities_b), (predicted_a, predicted_b)
    )
    classes = probabilities[0].shape[1]
    names = _parsed(metrics, classes)
    single_auc = [base == "roc_auc" and (k is not None or classes == 2) for base, k in names]
    if classes == 2 and "roc_auc" in metrics:
        _check_sums_to_one(probabilities)
    bootstrapped = [metric for metric, s in zip(metrics, single_auc, strict=True) if not s]
    rows = iter(
        paired_bootstrap(
            labels, *probabilities, *predicted, metrics=bootstrapped, resamples=resamples, seed=seed
        )
        if bootstrapped
        else []
    )
    out = []
    for metric, (_, k), single in zip(metrics, names, single_auc, strict=True):
        if not single:
            out.append(next(rows))
            continue
        out.append(_delong_row(metric, labels, probabilities, predicted, 1 if k is None else k))
    return out


def _delong_row(
    metric: str,
    labels: np.ndarray,
    probabilities: tuple[np.ndarray, np.ndarray],
    predicted: tuple[np.ndarray, np.ndarray],
    k: int,
) -> PairedDifference:
    """The row of one AUC, class k against the rest: the project's figures, DeLong's test."""
    a, b = (
        _figures(labels, p, q, [_parse(metric, p.shape[1])])[0]
        for p, q in zip(probabilities, predicted, strict=True)
    )
    test = delong_test(labels == k, probabilities[0][:, k], probabilities[1][:, k])
    difference = a - b
    half_width = Z_95 * math.sqrt(test.variance)  # NaN where the variance is
    return PairedDifference(
        metric=metric,
        a=a,
        b=b,
        difference=difference,
        low=difference - half_width,
        high=difference + half_width,
        p_value=test.p_value,
        method="DeLong",
        patients=labels.size,
        resamples=0,
    )


def _components(scores: np.ndarray, positive: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and structural components from midranks: V10 per positive (share of negatives
    scored below it, ties half), V01 per negative (share of positives scored above it)."""
    pos, neg = scores[positive], scores[~positive]
    m, n = pos.size, neg.size
    overall = rankdata(np.concatenate([pos, neg]))
    v10 = (overall[:m] - rankdata(pos)) / n
    v01 = 1.0 - (overall[m:] - rankdata(neg)) / m
    return float(v10.mean()), v10, v01


def _normal_p(difference: float, variance: float) -> float:
    """Two-sided normal p-value of a zero difference; a zero variance gives 1 for a zero
    difference (identical scores) and 0 otherwise."""
    if variance <= 0.0:
        return 1.0 if difference == 0.0 else 0.0
    return math.erfc(abs(difference) / math.sqrt(2.0 * variance))


def _draws(
    labels: np.ndarray,
    probabilities: tuple[np.ndarray, np.ndarray],
    predicted: tuple[np.ndarray, np.ndarray],
    names: list[tuple[str, int | None]],
    resamples: int,
    seed: int,
) -> np.ndarray:
    """(kept draws, metrics) differences a - b, each draw the same patients for both models;
    a draw lacking a class that the patients have is left out."""
    rng = np.random.default_rng(seed)
    classes = probabilities[0].shape[1]
    present = np.bincount(labels, minlength=classes) > 0
    rows = []
    for _ in range(resamples):
        draw = rng.integers(0, labels.size, labels.size)
        if (np.bincount(labels[draw], minlength=classes) > 0).sum() < present.sum():
            continue
        a, b = (
            _figures(labels[draw], p[draw], q[draw], names)
            for p, q in zip(probabilities, predicted, strict=True)
        )
        rows.append(np.subtract(a, b))
    return np.array(rows).reshape(len(rows), len(names))


def _percentile_test(differences: np.ndarray) -> tuple[float, float, float]:
    """Percentile 95 % interval and two-sided p-value (with the +1 correction) of the
    bootstrap differences; NaN for all three without any."""
    if differences.size == 0:
        return math.nan, math.nan, math.nan
    low, high = np.percentile(differences, [2.5, 97.5])
    extreme = int(min((differences <= 0).sum(), (differences >= 0).sum())) + 1
    return float(low), float(high), min(1.0, 2.0 * extreme / (differences.size + 1))


def _figures(
    labels: np.ndarray,
    probabilities: np.ndarray,
    predicted: np.ndarray,
    names: list[tuple[str, int | None]],
) -> list[float]:
    """The named figures, as `classification_metrics` computes them."""
    macro, per_class = classification_metrics(labels, probabilities, predicted)
    return [macro[base] if k is None else float(per_class[base][k]) for base, k in names]


def _parsed(metrics: Sequence[str], classes: int) -> list[tuple[str, int | None]]:
    if isinstance(metrics, str):
        raise ValueError(f"metrics: expected a sequence of names, got the string {metrics!r}")
    return [_parse(metric, classes) for metric in metrics]


def _parse(metric: str, classes: int) -> tuple[str, int | None]:
    """("sensitivity", None) for a macro figure, ("sensitivity", 1) for "sensitivity[1]"."""
    match = _PER_CLASS.match(metric)
    if match is None:
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r}: expected one of {METRICS} or 'name[class]'")
        return metric, None
    base, k = match[1], int(match[2])
    if base not in PER_CLASS_METRICS or k >= classes:
        raise ValueError(
            f"metric {metric!r}: expected one of {PER_CLASS_METRICS} and a class below {classes}"
        )
    return base, k


def _check_sums_to_one(probabilities: tuple[np.ndarray, np.ndarray]) -> None:
    for name, p in zip(("probabilities_a", "probabilities_b"), probabilities, strict=True):
        if not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
            raise ValueError(
                f"{name}: expected rows summing to 1 for the binary roc_auc (DeLong on the "
                "probability of class 1); pass 'roc_auc[1]' to compare class 1's AUC as is"
            )


def _checked(
    labels: np.ndarray,
    probabilities: tuple[np.ndarray, np.ndarray],
    predicted: tuple[np.ndarray | None, np.ndarray | None],
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Arrays of the expected shapes (predictions default to the argmax), or ValueError."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "labels: expected a non-empty 1-D array of integer class indices, "
            f"got shape {labels.shape} of {labels.dtype}"
        )
    n = labels.size
    probs = tuple(np.asarray(p, dtype=float) for p in probabilities)
    for name, p in zip(("probabilities_a", "probabilities_b"), probs, strict=True):
        if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 2:
            raise ValueError(f"{name}: expected shape ({n}, classes >= 2), got {p.shape}")
    if probs[0].shape != probs[1].shape:
        raise ValueError(
            f"probabilities_b: expected the shape of probabilities_a {probs[0].shape}, "
            f"got {probs[1].shape}"
        )
    classes = probs[0].shape[1]
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"labels: expected class indices 0 to {classes - 1}")
    preds = []
    for name, p, q in zip(("predicted_a", "predicted_b"), probs, predicted, strict=True):
        q = p.argmax(axis=1) if q is None else np.asarray(q)
        if q.shape != (n,) or not np.issubdtype(q.dtype, np.integer):
            raise ValueError(f"{name}: expected {n} class indices, got shape {q.shape}")
        if q.size and (q.min() < 0 or q.max() >= classes):
            raise ValueError(f"{name}: expected class indices 0 to {classes - 1}")
        preds.append(q)
    return labels, (probs[0], probs[1]), (preds[0], preds[1])
