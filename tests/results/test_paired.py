"""Paired comparisons of two models on the same patients: DeLong's test against an
independent O(m n) reference and a hand-worked case, and compare_models's refusals of
inputs that do not fit. What its tests and intervals do at small classes is in
test_paired_tests.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from results.paired import compare_models, delong_test


def binary(p1: np.ndarray) -> np.ndarray:
    """(n, 2) probabilities from the probability of class 1."""
    return np.column_stack([1 - p1, p1])


def reference_delong(labels, scores_a, scores_b):
    """DeLong 1988 as written: psi over every (positive, negative) pair, the structural
    components V10 (per positive) and V01 (per negative), S = S10 / m + S01 / n."""
    positive = labels == 1
    aucs, v10, v01 = [], [], []
    for scores in (scores_a, scores_b):
        x, y = scores[positive][:, None], scores[~positive][None, :]
        psi = (x > y) + 0.5 * (x == y)
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    aucs, v10, v01 = np.array(aucs), np.array(v10), np.array(v01)
    m, n = v10.shape[1], v01.shape[1]
    s10 = (v10 - aucs[:, None]) @ (v10 - aucs[:, None]).T / (m - 1)
    s01 = (v01 - aucs[:, None]) @ (v01 - aucs[:, None]).T / (n - 1)
    contrast = np.array([1.0, -1.0])
    variance = contrast @ (s10 / m + s01 / n) @ contrast
    p_value = 2 * norm.sf(abs(aucs[0] - aucs[1]) / math.sqrt(variance))
    return aucs[0], aucs[1], variance, p_value


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_agrees_with_the_structural_components_reference(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 80)
    scores_a = np.round(labels * 0.8 + rng.normal(size=80), 1)  # rounded: ties within and
    scores_b = np.round(scores_a + rng.normal(scale=0.8, size=80), 1)  # across classes
    test = delong_test(labels, scores_a, scores_b)
    expected = reference_delong(labels, scores_a, scores_b)
    np.testing.assert_allclose(tuple(test), expected, rtol=0, atol=1e-10)
    assert test.auc_a == pytest.approx(roc_auc_score(labels, scores_a), abs=1e-12)
    assert test.auc_b == pytest.approx(roc_auc_score(labels, scores_b), abs=1e-12)
    assert 0 < test.p_value < 1


def test_delong_on_a_case_worked_by_hand():
    # Positives first. a: positives 0.9 0.8 0.4, negatives 0.7 0.3 0.2.
    #   V10 (negatives below each positive) = 1, 1, 2/3; V01 (positives above each
    #   negative) = 2/3, 1, 1; AUC 8/9.
    # b: positives 0.9 0.5 0.3, negatives 0.6 0.4 0.2.
    #   V10 = 1, 2/3, 1/3; V01 = 1/3, 2/3, 1; AUC 2/3.
    # V10 a - b = 0, 1/3, 1/3: mean 2/9, sample variance (4/81 + 1/81 + 1/81) / 2 = 1/27;
    # V01 a - b = 1/3, 1/3, 0: likewise 1/27.
    # var = 1/27 / 3 + 1/27 / 3 = 2/81; z = (2/9) / (sqrt(2)/9) = sqrt(2);
    # p = 2 (1 - Phi(sqrt 2)) = erfc(1) = 0.157299...
    labels = np.array([1, 1, 1, 0, 0, 0])
    scores_a = np.array([0.9, 0.8, 0.4, 0.7, 0.3, 0.2])
    scores_b = np.array([0.9, 0.5, 0.3, 0.6, 0.4, 0.2])
    auc_a, auc_b, variance, p_value = delong_test(labels, scores_a, scores_b)
    assert auc_a == pytest.approx(8 / 9) and auc_b == pytest.approx(2 / 3)
    assert variance == pytest.approx(2 / 81)
    assert p_value == pytest.approx(math.erfc(1.0)) and p_value == pytest.approx(0.157299, abs=1e-6)


def test_delong_identical_scores_and_a_missing_class():
    labels = np.array([1, 0, 1, 0, 1])
    scores = np.array([0.9, 0.2, 0.4, 0.6, 0.7])
    assert tuple(delong_test(labels, scores, scores)) == (5 / 6, 5 / 6, 0.0, 1.0)
    assert all(math.isnan(x) for x in delong_test(np.ones(5, int), scores, scores))
    with pytest.raises(ValueError, match=r"scores_b: expected shape \(5,\), got \(4,\)"):
        delong_test(labels, scores, scores[:4])


def test_mismatched_inputs_are_refused_with_what_was_expected():
    labels = np.array([0, 1, 0, 1])
    p = binary(np.array([0.1, 0.9, 0.4, 0.6]))
    with pytest.raises(ValueError, match=r"probabilities_b: expected shape \(4, classes >= 2\)"):
        compare_models(labels, p, p[:3])
    with pytest.raises(ValueError, match="predicted_a: expected 4 class indices"):
        compare_models(labels, p, p, predicted_a=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"probabilities_b: expected the shape of"):
        compare_models(labels, p, np.full((4, 3), 1 / 3))
    with pytest.raises(ValueError, match="metric 'auc'"):
        compare_models(labels, p, p, metrics=["auc"])
    with pytest.raises(ValueError, match=r"metric 'roc_auc\[2\]'"):
        compare_models(labels, p, p, metrics=["roc_auc[2]"])
    with pytest.raises(ValueError, match="metrics: expected a sequence of names"):
        compare_models(labels, p, p, metrics="accuracy")
