"""Paired comparisons of two classifiers evaluated on the same patients.

Both models saw the same patients, so their errors are correlated; comparing them patient
by patient (a paired test) cancels what they share and is far sharper than two separate
intervals side by side. These functions give, for each figure, the difference a - b, its
95 % interval, a two-sided p-value, the patients the difference rests on, and whether the
data support it. Every choice holds its error rate at any class mix, including a class of
one or two test patients (docs/finalize.md gives the measurements behind them):

- Accuracy and one class's sensitivity or specificity are proportions of the same
  patients: McNemar's exact test on the discordant patients (those one model gets right
  and the other wrong; Dietterich 1998), Newcombe's paired score interval
  (`results.intervals.paired_difference`).
- Balanced accuracy is a mean of per-class recalls, which rest on disjoint patients: an
  exact sign-flip test (each discordant patient's two answers swapped, every way, or 2,000
  random ways past 12 such patients) and the MOVER interval joining each class's Newcombe
  interval, so that a class of one patient carries its whole uncertainty.
- Every other figure (ROC AUC, macro or per class; F1; precision; NPV): a permutation test
  (each patient's two outputs swapped at random) and a percentile interval from a paired
  bootstrap stratified by class (every draw holds every class at its size; none is dropped).
  An interval of no width (every draw alike) is no interval: NaN. For an AUC the interval
  is the wider of that and the two models' Newcombe AUC intervals added in squares: the
  bootstrap alone held 0 for only 75 % of equal-skill pairs at the demo's mix.

`compare_models` is the entry. `holm_adjusted` adjusts a family of its rows for multiple
comparisons. The evidence rule (`is_supported`): a difference is supported only when its
p-value (adjusted, in a family) is below alpha, its interval has a width and excludes 0,
and it rests on at least `min_discordant(alpha)` discordant patients (6 at 5 %): an exact
two-sided test on fewer cannot reach 5 % (2 x 0.5^5 = 0.0625).

`delong_test` (DeLong's test of two correlated AUCs) stays for analysts; the comparisons
use the permutation test, which holds its error rate where DeLong's does not (a class of
a few patients).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy.stats import rankdata

from results.intervals import auc_interval, mcnemar_exact, mover_mean, paired_difference
from results.resampling import batched_figures, parse_figure, stratified_draws, swap_masks

__all__ = [
    "ALPHA",
    "DEFAULT_METRICS",
    "DeLong",
    "PairedDifference",
    "compare_models",
    "delong_test",
    "holm",
    "holm_adjusted",
    "is_supported",
    "min_discordant",
]

ALPHA = 0.05
DEFAULT_METRICS = ("accuracy", "balanced_accuracy", "roc_auc")
EXACT_UP_TO = 12  # discordant patients whose 2^k sign flips are all enumerated
_TIE = 1e-12  # permuted statistics this close to the observed one count as reaching it

MCNEMAR = "McNemar exact"
SIGN_FLIP = "sign-flip exact"
PERMUTATION = "permutation"
NEWCOMBE = "Newcombe paired score"
MOVER = "MOVER of per-class Newcombe"
BOOTSTRAP = "stratified paired bootstrap"
AUC_ENVELOPE = "wider of stratified paired bootstrap and Newcombe AUC square-and-add"


@dataclass(frozen=True)
class PairedDifference:
    """One figure of models a and b on the same patients, and what the data say of a - b.

    `metric` is a macro figure ("balanced_accuracy") or one class's ("sensitivity[1]").
    `a` and `b` are the figures on all patients, as `classification_metrics` gives them.
    `low` and `high` bound the 95 % interval of the difference (NaN where none can be
    given). `method` names the test, `interval_method` the interval; `resamples` counts the
    random draws behind them (0 where both are exact or closed-form). `a_only` and `b_only`
    count the patients of the figure that one model gets right and the other wrong;
    `discordant` counts the patients the difference rests on (for accuracy, sensitivity,
    specificity and balanced accuracy `a_only + b_only`; for figures of the scores or the
    calls, the patients whose scores or calls differ), `discordant_by_class` per true
    class. `p_adjusted` is the p-value adjusted over the family it was compared in (the
    p-value itself alone) and `supported` the evidence rule's verdict (`is_supported`).
    """

    metric: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float
    method: str
    interval_method: str
    patients: int
    resamples: int
    a_only: int
    b_only: int
    discordant: int
    discordant_by_class: tuple[int, ...]
    p_adjusted: float
    supported: bool


class DeLong(NamedTuple):
    """DeLong's test of two correlated AUCs: the AUCs, the variance of auc_a - auc_b and the
    two-sided p-value of a zero difference (NaN where a class has fewer than two patients)."""

    auc_a: float
    auc_b: float
    variance: float
    p_value: float


def min_discordant(alpha: float = ALPHA) -> int:
    """The fewest discordant patients with which an exact two-sided test can reach
    `alpha`: the smallest k with 2 x 0.5^k < alpha (6 at 0.05)."""
    return math.floor(math.log2(2 / alpha)) + 1


def is_supported(
    low: float, high: float, p_value: float, discordant: int, alpha: float = ALPHA
) -> bool:
    """The evidence rule: p below alpha, an interval with a width that excludes 0, and at
    least `min_discordant(alpha)` patients behind the difference."""
    has_interval = low == low and high == high and high > low  # NaN compares unequal
    return bool(
        p_value < alpha
        and has_interval
        and (low > 0 or high < 0)
        and discordant >= min_discordant(alpha)
    )


def compare_models(
    labels: np.ndarray,
    probabilities_a: np.ndarray,
    probabilities_b: np.ndarray,
    predicted_a: np.ndarray | None = None,
    predicted_b: np.ndarray | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    resamples: int = 2000,
    seed: int = 0,
    alpha: float = ALPHA,
) -> list[PairedDifference]:
    """Models a and b compared on the same patients, one row per metric, in order.

    Args:
        labels: (n,) true class indices.
        probabilities_a, probabilities_b: (n, classes) each model's class probabilities.
        predicted_a, predicted_b: (n,) predicted classes; default the argmax (a binary model
            with its own threshold passes its own).
        metrics: figure names (`results.resampling.FIGURES`); "name[k]" is class k's figure.
        resamples: random draws for the permutation tests and the bootstrap intervals.
        seed: seed of the draws; the same seed gives the same result.
        alpha: the level of `supported` (each row alone; `holm_adjusted` for a family).

    Raises:
        ValueError: shapes that do not match the labels, or an unknown metric.
    """
    labels, probabilities, predicted = _checked(
        labels, (probabilities_a, probabilities_b), (predicted_a, predicted_b)
    )
    if resamples < 1:
        raise ValueError(f"resamples: expected at least 1, got {resamples}")
    if isinstance(metrics, str):
        raise ValueError(f"metrics: expected a sequence of names, got the string {metrics!r}")
    classes = probabilities[0].shape[1]
    names = [parse_figure(metric, classes) for metric in metrics]
    a, b = (
        batched_figures(labels, p[None], q[None], names)[0]
        for p, q in zip(probabilities, predicted, strict=True)
    )
    generic = [i for i, (base, k) in enumerate(names) if _kind(base, k) == "generic"]
    tests = _permutation_tests(labels, probabilities, predicted, names, generic, resamples, seed)
    rows = []
    for i, (metric, (base, k)) in enumerate(zip(metrics, names, strict=True)):
        kind = _kind(base, k)
        if kind == "proportion":
            row = _proportion_row(labels, predicted, base, k, classes)
        elif kind == "balanced":
            row = _balanced_row(labels, predicted, classes, resamples, seed)
        else:
            row = _generic_row(labels, probabilities, predicted, base, k, *tests[i])
        p_value, low, high = row.pop("p_value"), row.pop("low"), row.pop("high")
        supported = is_supported(low, high, p_value, row["discordant"], alpha)
        figures = {"a": float(a[i]), "b": float(b[i]), "difference": float(a[i] - b[i])}
        rows.append(
            PairedDifference(
                metric,
                **figures,
                low=low,
                high=high,
                p_value=p_value,
                patients=labels.size,
                p_adjusted=p_value,
                supported=supported,
                **row,
            )
        )
    return rows


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), in the input order; NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    order = defined[np.argsort(p[defined], kind="stable")]
    running, m = 0.0, len(order)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def holm_adjusted(
    family: Sequence[PairedDifference], alpha: float = ALPHA
) -> list[PairedDifference]:
    """The rows of one family (comparisons of the same figure), each with its Holm-adjusted
    p-value and the evidence rule's verdict on it."""
    return [
        replace(row, p_adjusted=p, supported=is_supported(row.low, row.high, p,
                                                          row.discordant, alpha))
        for row, p in zip(family, holm([r.p_value for r in family]), strict=True)
    ]  # fmt: skip


def delong_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> DeLong:
    """DeLong's test that two scores of the same patients have the same ROC AUC.

    The variance of auc_a - auc_b comes from the structural components (each patient's share
    of the AUC), S10 over the positives and S01 over the negatives: var = (var of the
    positives' component differences) / m + (var of the negatives') / n. The components are
    computed from midranks (Sun & Xu 2014), O(n log n), ties counted half. The p-value is
    two-sided from the normal distribution, an approximation that runs anticonservative
    when a class has few patients (docs/finalize.md).

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


def _kind(base: str, k: int | None) -> str:
    """How a figure is tested: "proportion" (a share of fixed patients: McNemar),
    "balanced" (balanced accuracy: sign flips), "generic" (permutation and bootstrap)."""
    if base == "accuracy" or (k is not None and base in ("sensitivity", "specificity")):
        return "proportion"
    return "balanced" if base == "balanced_accuracy" else "generic"


def _proportion_row(labels, predicted, base, k, classes) -> dict:
    """McNemar's exact test and Newcombe's interval on the figure's patients: all of them
    (accuracy), class k's (its sensitivity: called k) or the others (its specificity:
    not called k)."""
    if base == "accuracy":
        scope, right = np.ones(labels.size, bool), [q == labels for q in predicted]
    elif base == "sensitivity":
        scope, right = labels == k, [q == k for q in predicted]
    else:
        scope, right = labels != k, [q != k for q in predicted]
    both, a_only, b_only, neither = _cells(right[0][scope], right[1][scope])
    low, high = paired_difference(both, a_only, b_only, neither)
    by_class = _by_class(labels, (right[0] != right[1]) & scope, classes)
    return {
        "p_value": float(mcnemar_exact(a_only, b_only)), "low": float(low),
        "high": float(high), "method": MCNEMAR, "interval_method": NEWCOMBE, "resamples": 0,
        "a_only": a_only, "b_only": b_only, "discordant": a_only + b_only,
        "discordant_by_class": by_class,
    }  # fmt: skip


def _balanced_row(labels, predicted, classes, resamples, seed) -> dict:
    """Balanced accuracy (mean recall over the classes present): the sign-flip test of its
    discordant patients, each weighing 1 / (classes x its class's patients), and the MOVER
    interval over each class's Newcombe interval."""
    right_a, right_b = (q == labels for q in predicted)
    present = np.unique(labels)
    sizes = np.bincount(labels, minlength=classes)
    diffs, lows, highs = [], [], []
    for c in present:
        cells = _cells(right_a[labels == c], right_b[labels == c])
        low, high = paired_difference(*cells)
        diffs.append((cells[1] - cells[2]) / sizes[c])
        lows.append(low)
        highs.append(high)
    low, high = mover_mean(diffs, lows, highs)
    discordant = right_a != right_b
    weights = (right_a.astype(float) - right_b)[discordant] / (present.size * sizes[labels])[
        discordant
    ]
    p_value, draws = _sign_flip(weights, resamples, seed)
    _, a_only, b_only, _ = _cells(right_a, right_b)
    return {
        "p_value": p_value, "low": max(low, -1.0), "high": min(high, 1.0),
        "method": SIGN_FLIP if draws == 0 else PERMUTATION, "interval_method": MOVER,
        "resamples": draws, "a_only": a_only, "b_only": b_only, "discordant": a_only + b_only,
        "discordant_by_class": _by_class(labels, discordant, sizes.size),
    }  # fmt: skip


def _sign_flip(weights: np.ndarray, resamples: int, seed: int) -> tuple[float, int]:
    """Two-sided p-value of sum(weights) against every sign pattern of its terms (exact, up
    to EXACT_UP_TO terms) or `resamples` random ones (with the +1 that keeps a Monte Carlo
    p-value valid); and the random draws used (0 when exact)."""
    observed = abs(float(weights.sum()))
    if weights.size == 0:
        return 1.0, 0
    if weights.size <= EXACT_UP_TO:
        patterns = np.arange(2**weights.size)[:, None] >> np.arange(weights.size)
        signs = 1.0 - 2.0 * (patterns & 1)
        return float((np.abs(signs @ weights) >= observed - _TIE).mean()), 0
    rng = np.random.default_rng([seed, 2])
    signs = np.where(rng.random((resamples, weights.size)) < 0.5, -1.0, 1.0)
    reached = int((np.abs(signs @ weights) >= observed - _TIE).sum())
    return (reached + 1) / (resamples + 1), resamples


def _permutation_tests(labels, probabilities, predicted, names, columns, resamples, seed):
    """For the generic figures (`columns` of `names`): {column: (p-value, bootstrap
    differences)}, all figures from one pass of swaps and one of stratified draws."""
    if not columns:
        return {}
    chosen = [names[i] for i in columns]
    (p_a, p_b), (q_a, q_b) = probabilities, predicted
    observed = (batched_figures(labels, p_a[None], q_a[None], chosen)
                - batched_figures(labels, p_b[None], q_b[None], chosen))[0]  # fmt: skip
    swap = swap_masks(labels.size, resamples, np.random.default_rng([seed, 0]))
    swapped = [
        batched_figures(labels, np.where(s[..., None], p_b, p_a), np.where(s, q_b, q_a), chosen)
        for s in (swap, ~swap)
    ]
    permuted = swapped[0] - swapped[1]
    draws = stratified_draws(labels, resamples, np.random.default_rng([seed, 1]))
    boot = (batched_figures(labels[draws], p_a[draws], q_a[draws], chosen)
            - batched_figures(labels[draws], p_b[draws], q_b[draws], chosen))  # fmt: skip
    out = {}
    for j, column in enumerate(columns):
        values = permuted[:, j]
        kept = values[~np.isnan(values)]
        if np.isnan(observed[j]) or kept.size == 0:
            out[column] = (math.nan, boot[:, j])
            continue
        reached = int((np.abs(kept) >= abs(observed[j]) - _TIE).sum())
        out[column] = ((reached + 1) / (kept.size + 1), boot[:, j])
    return out


def _generic_row(labels, probabilities, predicted, base, k, p_value, differences) -> dict:
    """A figure of the scores or the calls: the permutation p-value and the bootstrap's
    percentile interval (NaN when the draws give it no width); for an AUC, the wider of
    that and the square-and-add of the two models' Newcombe intervals."""
    differences = differences[~np.isnan(differences)]
    low = high = math.nan
    interval_method = BOOTSTRAP
    if differences.size:
        low, high = (float(x) for x in np.percentile(differences, [2.5, 97.5]))
        if high - low <= _TIE:
            low = high = math.nan
    if base == "roc_auc":
        differs = np.any(probabilities[0] != probabilities[1], axis=1)
        closed = _auc_difference_interval(labels, probabilities, k)
        low, high = np.fmin(low, closed[0]), np.fmax(high, closed[1])
        interval_method = AUC_ENVELOPE
    else:
        differs = predicted[0] != predicted[1]
    _, a_only, b_only, _ = _cells(predicted[0] == labels, predicted[1] == labels)
    return {
        "p_value": p_value, "low": float(low), "high": float(high), "method": PERMUTATION,
        "interval_method": interval_method, "resamples": differences.size, "a_only": a_only,
        "b_only": b_only, "discordant": int(differs.sum()),
        "discordant_by_class": _by_class(labels, differs, probabilities[0].shape[1]),
    }  # fmt: skip


def _auc_difference_interval(labels, probabilities, k) -> tuple[float, float]:
    """An AUC difference's interval from the two models' Newcombe intervals, added in
    squares as if independent (wider than the truth, as the two are positively
    correlated), per class, then joined over the classes (MOVER) for the macro AUC.
    It carries a class of one patient's doubt, which a bootstrap within classes cannot."""
    classes = probabilities[0].shape[1]
    chosen = range(classes) if k is None else [k]
    rows = []
    for c in chosen:
        positives = int((labels == c).sum())
        if positives in (0, labels.size):
            continue
        names = [("roc_auc", c)]
        (a,), (b,) = (batched_figures(labels, p[None], p[None].argmax(2), names)[0]
                      for p in probabilities)  # fmt: skip
        (la, ua), (lb, ub) = (auc_interval(v, positives, labels.size - positives) for v in (a, b))
        rows.append((a - b, a - b - math.hypot(a - la, ub - b), a - b + math.hypot(ua - a, b - lb)))
    if not rows:
        return math.nan, math.nan
    low, high = mover_mean(*np.array(rows).T)
    return max(low, -1.0), min(high, 1.0)


def _cells(right_a: np.ndarray, right_b: np.ndarray) -> tuple[int, int, int, int]:
    """Patients right by both, by a only, by b only, by neither."""
    return (
        int((right_a & right_b).sum()), int((right_a & ~right_b).sum()),
        int((~right_a & right_b).sum()), int((~right_a & ~right_b).sum()),
    )  # fmt: skip


def _by_class(labels: np.ndarray, mask: np.ndarray, classes: int) -> tuple[int, ...]:
    return tuple(int(x) for x in np.bincount(labels[mask], minlength=classes))


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
