"""Simulated test sets for checking paired comparisons at a given class mix.

How often do the paired tests call two equally good models different when a class has
one test patient? Only simulation answers that for a given mix. Each simulated model is
right on each patient with its accuracy, independently of the other model and of the
patient; when wrong it calls another class at random; its probabilities favour the class
it calls. With equal accuracies the models have equal skill, so every difference the
tests call supported is a false positive. tests/results and bench/paired_tests.py use this;
an analyst can rerun it at their own class mix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from results.paired import compare_models

__all__ = ["simulated_model", "supported_rates"]


def simulated_model(
    labels: np.ndarray, accuracy: float, classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (n, classes), predicted (n,)) of a model right on each patient with
    probability `accuracy`, independently."""
    n = labels.size
    right = rng.random(n) < accuracy
    predicted = np.where(right, labels, (labels + rng.integers(1, classes, n)) % classes)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), predicted] += 2.5
    probabilities = np.exp(logits)
    return probabilities / probabilities.sum(axis=1, keepdims=True), predicted


def supported_rates(
    mix: Sequence[int],
    accuracy_a: float,
    accuracy_b: float,
    sets: int,
    metrics: Sequence[str],
    seed: int = 0,
    resamples: int = 500,
) -> dict[str, float]:
    """The share of `sets` simulated test sets (`mix[k]` patients of class k) on which
    `compare_models` calls each metric's difference supported."""
    rng = np.random.default_rng(seed)
    classes = len(mix)
    labels = np.repeat(np.arange(classes), mix)
    hits = np.zeros(len(metrics))
    for s in range(sets):
        a = simulated_model(labels, accuracy_a, classes, rng)
        b = simulated_model(labels, accuracy_b, classes, rng)
        rows = compare_models(labels, a[0], b[0], a[1], b[1], metrics, resamples, seed=s)
        hits += [row.supported for row in rows]
    return dict(zip(metrics, (hits / sets).tolist(), strict=True))
