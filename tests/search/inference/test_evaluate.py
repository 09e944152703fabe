"""Test figures: metrics against hand counts, intervals that hold the estimate and narrow
with more patients, exact intervals with their counts that keep their width on one
patient, calibration error, a binary threshold chosen on validation."""

from __future__ import annotations

import numpy as np
import pytest

from search.inference.evaluate import (
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
    assert figures.per_class["npv"] == pytest.approx([3 / 4, 1.0, 4 / 5])
    assert figures.counts["sensitivity/Normal"] == (1, 2)
    assert figures.counts["npv/Infarction"] == (4, 5) and figures.counts["accuracy"] == (4, 6)
    # without resamples, the closed forms only: no F1, no calibration error
    assert figures.count == 6 and {"f1", "ece"}.isdisjoint(figures.intervals)
    assert figures.interval_methods["specificity"] == "MOVER of per-class Clopper-Pearson"
    assert figures.interval_methods["accuracy"] == "Clopper-Pearson exact"
    assert figures.interval_methods["roc_auc"] == "MOVER of per-class Newcombe AUC"
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


def test_no_interval_has_zero_width_even_for_a_perfect_model_with_a_one_patient_class():
    """Before, a perfect model's intervals were [1.000, 1.000] and a one-patient class's
    sensitivity 0.000 [0.000, 0.000]: the bootstrap had nothing to resample. Proportions
    now get exact intervals with their counts; a figure every resample agrees on gets
    none rather than one of no width."""
    labels = np.array([0] + [1] * 5 + [2] * 26)
    probabilities = np.eye(3)[labels] * 0.9 + 0.1 / 3
    figures = evaluate_predictions(labels, probabilities, CLASSES, bootstrap=300, seed=0)
    assert figures.intervals["sensitivity/Normal"] == pytest.approx((0.025, 1.0))
    assert figures.counts["sensitivity/Normal"] == (1, 1)
    assert figures.intervals["sensitivity/Infarction"][0] == pytest.approx(0.8677, abs=1e-4)
    low, high = figures.intervals["balanced_accuracy"]
    assert 0.6 < low < 0.75 and high == 1.0  # the one patient's class carries its doubt
    assert all(high - low > 0 for low, high in figures.intervals.values())
    assert figures.intervals["specificity"][0] < 1 and figures.intervals["precision"][0] < 1
    assert "f1" not in figures.intervals  # every resample perfect: no interval
    wrong = probabilities.copy()
    wrong[0] = [0.1, 0.1, 0.8]  # the one Normal patient missed
    figures = evaluate_predictions(labels, wrong, CLASSES, bootstrap=300, seed=0)
    assert figures.per_class["sensitivity"][0] == 0.0
    assert figures.intervals["sensitivity/Normal"] == pytest.approx((0.0, 0.975))
    assert all(high - low > 0 for low, high in figures.intervals.values())
