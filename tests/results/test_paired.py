"""Paired comparisons of two models on the same patients: DeLong's test against an
independent O(m n) reference and a hand-worked case, the paired bootstrap's intervals and
p-values where the answer is known, and the figures against the project's metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from results.paired import compare_models, delong_test, paired_bootstrap
from trainables.metrics import classification_metrics


def binary(p1: np.ndarray) -> np.ndarray:
    """(n, 2) probabilities from the probability of class 1."""
    return np.column_stack([1 - p1, p1])


def skilled(labels: np.ndarray, skill: float, rng: np.random.Generator) -> np.ndarray:
    """Binary probabilities that separate the classes more the higher `skill` is."""
    return binary(1 / (1 + np.exp(-(skill * (2 * labels - 1) + rng.normal(size=labels.size)))))


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


def test_identical_models_differ_by_zero_with_p_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 40)
    probabilities = skilled(labels, 1.0, rng)
    rows = compare_models(labels, probabilities, probabilities.copy(), resamples=300)
    assert [row.method for row in rows] == ["paired bootstrap", "DeLong", "paired bootstrap"]
    for row in rows:
        assert (row.difference, row.low, row.high, row.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_a_much_better_model_on_200_patients_is_supported():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    good, poor = skilled(labels, 2.5, rng), skilled(labels, 0.2, rng)
    rows = compare_models(labels, good, poor, resamples=500)
    for row in rows:
        assert row.difference > 0.2 and row.low > 0 and row.p_value < 0.01, row
        assert row.low < row.difference < row.high
    # Every draw favours the good model, so the p-value is the least the +1 correction
    # allows with 500 draws: 2 (0 + 1) / (500 + 1), never 0.
    assert rows[0].p_value == pytest.approx(2 / 501)
    # DeLong's row: the normal interval, difference ± 1.959964 SE
    test = delong_test(labels, good[:, 1], poor[:, 1])
    assert rows[1].p_value == test.p_value
    assert rows[1].high - rows[1].difference == pytest.approx(1.959964 * math.sqrt(test.variance))


def test_a_small_difference_on_ten_patients_is_not_supported():
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    # a is wrong on patient 2 and 7, b on 3, 7 and 8: balanced accuracy 0.8 against 0.7
    wrong_a, wrong_b = np.isin(np.arange(10), [2, 7]), np.isin(np.arange(10), [3, 7, 8])
    jitter = np.linspace(0, 0.05, 10)
    p_a = binary(np.where(wrong_a, 1 - labels, labels) * 0.6 + 0.2 + jitter)
    p_b = binary(np.where(wrong_b, 1 - labels, labels) * 0.6 + 0.2 + jitter)
    rows = paired_bootstrap(labels, p_a, p_b, resamples=1000)
    assert rows[0].difference == pytest.approx(0.1)
    for row in rows:
        assert row.low < 0 < row.high and row.p_value > 0.05, row


def test_the_same_seed_gives_the_same_result_and_another_seed_another():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 30)
    p_a, p_b = rng.dirichlet(np.ones(3), 30), rng.dirichlet(np.ones(3), 30)
    first = compare_models(labels, p_a, p_b, resamples=200, seed=7)
    assert compare_models(labels, p_a, p_b, resamples=200, seed=7) == first
    other = compare_models(labels, p_a, p_b, resamples=200, seed=8)
    assert [(r.low, r.high) for r in other] != [(r.low, r.high) for r in first]
    # three classes: the macro AUC is a mean of AUCs, so the bootstrap, not DeLong
    assert {row.method for row in first} == {"paired bootstrap"}


def test_the_interval_comes_from_paired_draws():
    """Two closely correlated models: the paired interval of the difference is much
    narrower than the one from resampling each model's patients independently."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60)
    p_a = skilled(labels, 1.0, rng)
    p_b = binary(np.clip(p_a[:, 1] + rng.normal(scale=0.03, size=60), 0, 1))
    resamples = 400
    (paired,) = paired_bootstrap(labels, p_a, p_b, metrics=["roc_auc"], resamples=resamples)
    draws = np.random.default_rng(0)
    unpaired = []
    while len(unpaired) < resamples:
        aucs = []
        for p in (p_a, p_b):
            draw = draws.integers(0, 60, 60)
            aucs.append(classification_metrics(labels[draw], p[draw])[0]["roc_auc"])
        if not np.isnan(aucs).any():
            unpaired.append(aucs[0] - aucs[1])
    low, high = np.percentile(unpaired, [2.5, 97.5])
    assert paired.high - paired.low < 0.3 * (high - low)
    assert paired.low <= paired.difference <= paired.high


def test_the_figures_are_the_projects_on_all_patients():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 45)
    p_a, p_b = rng.dirichlet(np.ones(3), 45), rng.dirichlet(np.ones(3), 45)
    metrics = ["balanced_accuracy", "roc_auc", "sensitivity", "f1", "roc_auc[2]", "specificity[0]"]
    rows = compare_models(labels, p_a, p_b, metrics=metrics, resamples=50)
    (macro_a, class_a), (macro_b, class_b) = (classification_metrics(labels, p) for p in (p_a, p_b))
    assert [row.metric for row in rows] == metrics
    assert [row.a for row in rows[:4]] == [macro_a[m] for m in metrics[:4]]
    assert [row.b for row in rows[:4]] == [macro_b[m] for m in metrics[:4]]
    assert (rows[4].a, rows[4].b) == (class_a["roc_auc"][2], class_b["roc_auc"][2])
    assert (rows[5].a, rows[5].b) == (class_a["specificity"][0], class_b["specificity"][0])
    assert rows[4].method == "DeLong" and rows[4].resamples == 0  # one class's AUC: DeLong
    assert all(row.difference == row.a - row.b and row.patients == 45 for row in rows)


def test_a_binary_model_with_its_own_threshold():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 50)
    p_a, p_b = skilled(labels, 1.0, rng), skilled(labels, 1.0, rng)
    predicted_a, predicted_b = (p_a[:, 1] > 0.3).astype(int), (p_b[:, 1] > 0.7).astype(int)
    metrics = ["balanced_accuracy", "roc_auc", "sensitivity[1]"]
    rows = compare_models(labels, p_a, p_b, predicted_a, predicted_b, metrics, resamples=50)
    macro, per_class = classification_metrics(labels, p_a, predicted_a)
    assert (rows[0].a, rows[1].a) == (macro["balanced_accuracy"], macro["roc_auc"])
    assert rows[2].a == per_class["sensitivity"][1]
    assert rows[2].b == classification_metrics(labels, p_b, predicted_b)[1]["sensitivity"][1]
    assert rows[1].a == pytest.approx(delong_test(labels, p_a[:, 1], p_b[:, 1]).auc_a)


def test_draws_without_a_class_are_left_out():
    labels = np.array([1] + [0] * 9)  # a draw has the one positive with chance 1 - 0.9^10
    rng = np.random.default_rng(6)
    rows = paired_bootstrap(labels, skilled(labels, 1, rng), skilled(labels, 1, rng), None, None,
                            ["balanced_accuracy", "roc_auc"], resamples=1000)  # fmt: skip
    assert rows[0].resamples == rows[1].resamples
    assert rows[0].resamples == pytest.approx(1000 * (1 - 0.9**10), abs=60)


def test_mismatched_inputs_are_refused_with_what_was_expected():
    labels = np.array([0, 1, 0, 1])
    p = binary(np.array([0.1, 0.9, 0.4, 0.6]))
    with pytest.raises(ValueError, match=r"probabilities_b: expected shape \(4, classes >= 2\)"):
        paired_bootstrap(labels, p, p[:3])
    with pytest.raises(ValueError, match="predicted_a: expected 4 class indices"):
        compare_models(labels, p, p, predicted_a=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"probabilities_b: expected the shape of"):
        compare_models(labels, p, np.full((4, 3), 1 / 3))
    with pytest.raises(ValueError, match="metric 'auc'"):
        paired_bootstrap(labels, p, p, metrics=["auc"])
    with pytest.raises(ValueError, match=r"metric 'roc_auc\[2\]'"):
        compare_models(labels, p, p, metrics=["roc_auc[2]"])
    with pytest.raises(ValueError, match="rows summing to 1"):
        compare_models(labels, p, p * 2)
