"""Test figures: metrics against hand counts, intervals that hold the estimate and narrow
with more patients, calibration error, a binary threshold chosen on validation."""

from __future__ import annotations

import numpy as np
import pytest

from search.finalize.evaluate import (
    calibration,
    choose_threshold,
    evaluate_predictions,
    predict_classes,
)

CLASSES = ("Normal", "Ischemia", "Infarction")


def noisy_predictions(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels, and probabilities that favour the true class 70 % of the time."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    probabilities = rng.dirichlet(np.ones(3), count)
    right = rng.random(count) < 0.7
    probabilities[right, labels[right]] += 1.0
    return labels, probabilities / probabilities.sum(axis=1, keepdims=True)


def test_figures_count_like_the_confusion_matrix_says():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.8 + 0.2 / 3
    figures = evaluate_predictions(labels, probabilities, CLASSES, bootstrap=0)
    assert figures.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert figures.macro["accuracy"] == pytest.approx(4 / 6)
    assert figures.macro["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert figures.per_class["sensitivity"] == pytest.approx([0.5, 1.0, 0.5])
    assert figures.count == 6 and figures.intervals == {}
    assert set(figures.roc) == set(CLASSES)


def test_bootstrap_intervals_hold_the_estimate_and_narrow_with_more_patients():
    widths = []
    for count in (15, 400):
        labels, probabilities = noisy_predictions(count)
        figures = evaluate_predictions(labels, probabilities, CLASSES, bootstrap=300, seed=1)
        low, high = figures.intervals["balanced_accuracy"]
        assert low <= figures.macro["balanced_accuracy"] <= high
        low_auc, high_auc = figures.intervals["roc_auc/Ischemia"]
        assert 0 <= low_auc <= high_auc <= 1
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # 15 patients leave a wide interval
    again = evaluate_predictions(*noisy_predictions(15), CLASSES, bootstrap=300, seed=1)
    assert (
        again.intervals
        == evaluate_predictions(*noisy_predictions(15), CLASSES, bootstrap=300, seed=1).intervals
    )  # seeded


def test_calibration_error_is_zero_when_confidence_matches_accuracy():
    # confidence 0.75 in every case, right 3 times out of 4: perfectly calibrated
    labels = np.array([0, 0, 0, 1])
    probabilities = np.tile([0.75, 0.25], (4, 1))
    ece, bins = calibration(labels, probabilities, predict_classes(probabilities))
    assert ece == pytest.approx(0.0) and bins[0]["count"] == 4
    # confidence 0.9, right half the time: off by 0.4
    ece, _ = calibration(np.array([0, 1]), np.tile([0.9, 0.1], (2, 1)), np.array([0, 0]))
    assert ece == pytest.approx(0.4)


def test_a_binary_threshold_is_chosen_on_validation_and_applied():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.05, 0.10, 0.30, 0.32, 0.35, 0.60])  # class 1 from 0.32 separates
    probabilities = np.column_stack([1 - scores, scores])
    threshold = choose_threshold(labels, probabilities)
    assert 0.30 < threshold <= 0.32
    assert list(predict_classes(probabilities, threshold)) == [0, 0, 0, 1, 1, 1]
    assert list(predict_classes(probabilities)) == [0, 0, 0, 0, 0, 1]  # argmax misses two
    figures = evaluate_predictions(labels, probabilities, ("Normal", "CAD"), threshold, 0)
    assert figures.macro["balanced_accuracy"] == 1.0 and figures.threshold == threshold


def test_a_perfect_model_has_perfect_intervals_even_with_a_rare_class():
    """Resamples that miss the one rare patient leave its 0/0 figures out instead of
    counting them as 0, which would drag a perfect model's intervals down."""
    labels = np.array([0] + [1] * 5 + [2] * 18)
    probabilities = np.eye(3)[labels] * 0.9 + 0.1 / 3
    figures = evaluate_predictions(labels, probabilities, CLASSES, bootstrap=300, seed=0)
    for name in ("sensitivity", "specificity", "precision", "f1", f"precision/{CLASSES[0]}"):
        assert figures.intervals[name] == (1.0, 1.0), name
