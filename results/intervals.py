"""Confidence intervals and an exact test computed from counts, for figures measured on few
patients.

A test split of a few dozen patients may hold one or two patients of a class. A bootstrap
has nothing to resample there: every draw holds the same patient, and a sensitivity
measured on one patient comes out as "0.000 [0.000, 0.000]". These intervals come from the
counts themselves and keep the width the counts leave, however few there are:

- `clopper_pearson`: the exact interval of one proportion (sensitivity, specificity, PPV,
  NPV, accuracy): "0 / 1 [0.000, 0.975]".
- `wilson`: Wilson's score interval of a proportion, the building block of the two below.
- `paired_difference`: Newcombe's interval for the difference of two proportions measured
  on the same patients (1998, his method 10: Wilson intervals of each, joined with the
  pairs' correlation).
- `mover_mean`: the interval of a weighted mean of independent figures from each one's
  interval (MOVER, Zou & Donner 2008): a balanced accuracy from its classes' recalls,
  which rest on disjoint patients.
- `auc_interval`: Newcombe's score interval for one ROC AUC (2006, his method 5: the
  Hanley-McNeil variance with N* = (m + n) / 2 - 1, solved at each bound), which stays
  open at an AUC of 1.
- `mcnemar_exact`: McNemar's exact test (Dietterich 1998 for two classifiers): the
  patients one model gets right and the other wrong, binomial with p = 1/2 under no
  difference.

All take and return numpy arrays (or floats) element-wise; no count gives NaN.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.stats import beta, binom, norm

__all__ = [
    "auc_interval",
    "clopper_pearson",
    "mcnemar_exact",
    "mover_mean",
    "paired_difference",
    "wilson",
]


def _z(confidence: float) -> float:
    return float(norm.ppf(0.5 + confidence / 2))


def clopper_pearson(successes, trials, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) interval of successes / trials: the beta quantiles; 0 and 1
    where the count is 0 or all; NaN for no trials."""
    k, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    tail = (1 - confidence) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, beta.ppf(tail, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - tail, k + 1, n - k), 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def wilson(successes, trials, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's score interval of successes / trials; NaN for no trials."""
    k, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    z2 = _z(confidence) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (k + z2 / 2) / (n + z2)
        half = math.sqrt(z2) * np.sqrt(k * (n - k) / n + z2 / 4) / (n + z2)
    low, high = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def paired_difference(
    both, a_only, b_only, neither, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's interval (1998, method 10) for p_a - p_b, two proportions on the same
    patients: `both` right by both, `a_only` by a alone, `b_only` by b alone, `neither`.

    Each proportion gets its Wilson interval; they are joined with phi, the correlation of
    the pairs (continuity-corrected as Newcombe does: ad - bc shrunk by n/2 towards 0 when
    positive; 0 where a margin is empty). NaN for no patients."""
    a, b, c, d = (np.asarray(x, dtype=float) for x in (both, a_only, b_only, neither))
    n = a + b + c + d
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = (a + b) / n, (a + c) / n
        l1, u1 = wilson(a + b, n, confidence)
        l2, u2 = wilson(a + c, n, confidence)
        margins = (a + b) * (c + d) * (a + c) * (b + d)
        cross = a * d - b * c
        corrected = np.where(cross > n / 2, cross - n / 2, np.where(cross < 0, cross, 0.0))
        phi = np.where(margins > 0, corrected / np.sqrt(np.where(margins > 0, margins, 1)), 0.0)
        below = np.sqrt(np.maximum(
            (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0
        ))  # fmt: skip
        above = np.sqrt(np.maximum(
            (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2, 0
        ))  # fmt: skip
    difference = p1 - p2
    return np.clip(difference - below, -1, 1), np.clip(difference + above, -1, 1)


def mover_mean(estimates, lows, highs, weights=None) -> tuple[float, float]:
    """The interval of sum(w * estimate) for independent estimates with intervals (low,
    high) each and weights w >= 0 (default: equal, summing to 1): MOVER (Zou & Donner
    2008), L = sum - sqrt(sum(w^2 (estimate - low)^2)), U likewise with the highs."""
    estimates, lows, highs = (np.asarray(x, dtype=float) for x in (estimates, lows, highs))
    if weights is None:
        weights = np.full(estimates.shape, 1 / estimates.size)
    weights = np.asarray(weights, dtype=float)
    total = float((weights * estimates).sum())
    below = math.sqrt(float((weights**2 * (estimates - lows) ** 2).sum()))
    above = math.sqrt(float((weights**2 * (highs - estimates) ** 2).sum()))
    return total - below, total + above


def mcnemar_exact(a_only, b_only) -> np.ndarray:
    """Two-sided p-value of McNemar's exact test: of the a_only + b_only discordant
    patients, as few as min(a_only, b_only) on one side under Binomial(n, 1/2), doubled,
    at most 1 (1 without discordant patients)."""
    b, c = np.asarray(a_only), np.asarray(b_only)
    p = 2 * binom.cdf(np.minimum(b, c), b + c, 0.5)
    return np.minimum(p, 1.0)


def auc_interval(auc: float, positives: int, negatives: int, confidence: float = 0.95):
    """Newcombe's score interval (2006, method 5) for an AUC from `positives` and
    `negatives` patients: the bounds theta where (auc - theta)^2 = z^2 V(theta), with the
    Hanley-McNeil variance V(theta) = theta (1 - theta) (1 + N* (1 - theta) / (2 - theta)
    + N* theta / (1 + theta)) / (m n) and N* = (m + n) / 2 - 1. NaN without both."""
    if positives < 1 or negatives < 1 or auc != auc:
        return math.nan, math.nan
    z = _z(confidence)
    star = (positives + negatives) / 2 - 1

    def spread(theta: float) -> float:
        variance = theta * (1 - theta) * (1 + star * (1 - theta) / (2 - theta)
                                          + star * theta / (1 + theta))  # fmt: skip
        return z * math.sqrt(max(variance, 0.0) / (positives * negatives))

    # At an AUC of 1 (or 0) the estimate itself is a root, with no spread: bracket the
    # other one just inside it.
    inner = 1e-12
    low = 0.0 if auc <= 0 else brentq(lambda t: auc - t - spread(t), 0.0, min(auc, 1 - inner))
    high = 1.0 if auc >= 1 else brentq(lambda t: auc - t + spread(t), max(auc, inner), 1.0)
    return float(low), float(high)
