"""Figures of many test-set variants at once: each row equal to the project's metrics on
that variant, draws that keep every class at its size, swaps of two models' outputs."""

from __future__ import annotations

import numpy as np
import pytest

from results.resampling import (
    batched_ece,
    batched_figures,
    parse_figure,
    stratified_draws,
    swap_masks,
)
from search.inference.evaluate import calibration
from trainables.metrics import METRICS, PER_CLASS_METRICS, classification_metrics


@pytest.mark.parametrize("seed", range(4))
def test_each_row_is_classification_metrics_of_that_variant(seed):
    rng = np.random.default_rng(seed)
    rows, n, classes = 40, int(rng.integers(3, 25)), int(rng.integers(2, 5))
    labels = rng.integers(0, classes, (rows, n))  # some rows lack a class
    probabilities = np.round(rng.dirichlet(np.ones(classes), (rows, n)), 1)  # ties
    predicted = rng.integers(0, classes, (rows, n))
    names = [(m, None) for m in METRICS]
    names += [(m, k) for m in PER_CLASS_METRICS for k in range(classes)]
    figures = batched_figures(labels, probabilities, predicted, names)
    for r in range(rows):
        macro, per_class = classification_metrics(labels[r], probabilities[r], predicted[r])
        expected = [macro[m] for m in METRICS]
        expected += [per_class[m][k] for m in PER_CLASS_METRICS for k in range(classes)]
        np.testing.assert_allclose(figures[r], expected, rtol=0, atol=1e-12)


def test_npv_and_ece_of_each_row():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, (30, 20))
    probabilities = rng.dirichlet(np.ones(3), (30, 20))
    predicted = probabilities.argmax(axis=2)
    npv = batched_figures(labels, probabilities, predicted, [("npv", 1)])[:, 0]
    ece = batched_ece(labels, probabilities, predicted)
    for r in range(30):
        not_called = predicted[r] != 1
        assert npv[r] == pytest.approx((labels[r][not_called] != 1).mean())
        assert ece[r] == pytest.approx(calibration(labels[r], probabilities[r], predicted[r])[0])


def test_stratified_draws_hold_every_class_at_its_size():
    labels = np.array([0] + [1] * 5 + [2] * 26)
    draws = stratified_draws(labels, 500, np.random.default_rng(0))
    assert draws.shape == (500, 32)
    assert (labels[draws] == labels).all()  # each position drawn from its own class
    assert len(np.unique(draws[:, 1:6])) == 5  # and within the class, with replacement


def test_swap_masks_swap_about_half():
    masks = swap_masks(32, 1000, np.random.default_rng(0))
    assert masks.shape == (1000, 32) and 0.45 < masks.mean() < 0.55


def test_figure_names_are_checked():
    assert parse_figure("npv[2]", 3) == ("npv", 2)
    with pytest.raises(ValueError, match=r"metric 'npv\[3\]'"):
        parse_figure("npv[3]", 3)
    with pytest.raises(ValueError, match="metric 'auc'"):
        parse_figure("auc", 3)
