"""compare_models at the class mixes our users have: a class of one or two test patients.

The error rate is measured, not assumed: equal-skill model pairs on 1,000 simulated test
sets at the demo's mix (1 / 5 / 26), the first seed's (1 / 5 / 16) and a balanced one are
called different in at most 5 % of sets (plus simulation error), and a real difference is
still found. Then the cases behind it: the one-patient class, the exact tests against
enumeration and scipy, the evidence rule.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest
from scipy.stats import binomtest

from results.paired import (
    compare_models,
    holm_adjusted,
    is_supported,
    min_discordant,
)
from results.paired_simulation import simulated_model, supported_rates

DEMO_MIX, SEED_MIX, BALANCED_MIX = (1, 5, 26), (1, 5, 16), (11, 11, 10)
SETS = 1000
# A true rate of 5 % is seen above 5 % + 2.33 standard errors (sqrt(0.05 x 0.95 / 1000) =
# 0.69 %), that is above 6.6 %, in 1 % of simulations: the allowance for simulation error.
ALLOWED = 0.05 + 2.33 * math.sqrt(0.05 * 0.95 / SETS)
RATE_METRICS = ("accuracy", "balanced_accuracy", "sensitivity[0]", "sensitivity[1]",
                "sensitivity[2]")  # fmt: skip


@pytest.mark.parametrize("mix", [DEMO_MIX, SEED_MIX, BALANCED_MIX])
def test_equal_skill_models_are_called_different_in_at_most_5_percent(mix):
    """Before issue 26 the balanced accuracy was called different in 25 % (demo mix) and
    28 % (first seed's) of such sets: draws lacking the one-patient class were dropped."""
    rates = supported_rates(mix, 0.85, 0.85, SETS, RATE_METRICS, seed=sum(mix), resamples=200)
    assert all(rate <= ALLOWED for rate in rates.values()), rates


def test_a_real_difference_on_99_balanced_patients_is_supported():
    rates = supported_rates((33, 33, 33), 0.90, 0.60, 200, RATE_METRICS, seed=1, resamples=200)
    assert rates["accuracy"] >= 0.8 and rates["balanced_accuracy"] >= 0.8, rates
    # One class's recall rests on its 33 patients: McNemar's exact test finds the 0.3
    # difference in about three sets of four (0.70-0.76 measured, docs/finalize.md).
    assert all(rates[f"sensitivity[{k}]"] >= 0.6 for k in range(3)), rates


def one_patient_apart() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The demo's mix; a and b agree on every patient but the one Infarction patient (class
    0), whom a gets right and b does not."""
    labels = np.repeat([0, 1, 2], DEMO_MIX)
    rng = np.random.default_rng(3)
    p_a, _ = simulated_model(labels, 0.85, 3, rng)
    p_a[0] = [0.8, 0.1, 0.1]
    p_b = p_a.copy()
    p_b[0] = [0.1, 0.1, 0.8]
    return labels, p_a, p_b


def test_a_difference_that_rests_on_one_patient_is_not_supported_and_keeps_its_width():
    labels, p_a, p_b = one_patient_apart()
    metrics = ["balanced_accuracy", "sensitivity[0]", "accuracy"]
    balanced, recall, accuracy = compare_models(labels, p_a, p_b, metrics=metrics)
    assert balanced.difference == pytest.approx(1 / 3)  # before: "+0.333 [+0.333, +0.333]"
    assert balanced.p_value == 1.0 and balanced.method == "sign-flip exact"
    assert balanced.low < 0 < balanced.high and balanced.high - balanced.low > 0.3
    assert (balanced.a_only, balanced.b_only, balanced.discordant) == (1, 0, 1)
    assert balanced.discordant_by_class == (1, 0, 0)
    assert recall.difference == 1.0 and recall.p_value == 1.0  # McNemar on one patient
    assert recall.low == pytest.approx(-0.1221, abs=1e-4) and recall.high == 1.0
    assert accuracy.difference == pytest.approx(1 / 32)
    assert not any(row.supported for row in (balanced, recall, accuracy))


def test_mcnemar_rows_match_scipy_binomtest():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 60)
    (p_a, q_a), (p_b, q_b) = (simulated_model(labels, acc, 3, rng) for acc in (0.9, 0.6))
    rows = compare_models(labels, p_a, p_b, q_a, q_b, ["accuracy", "sensitivity[1]",
                                                       "specificity[2]"])  # fmt: skip
    scopes = [np.ones(60, bool), labels == 1, labels != 2]
    rights = [(q_a == labels, q_b == labels), (q_a == 1, q_b == 1), (q_a != 2, q_b != 2)]
    for row, scope, (right_a, right_b) in zip(rows, scopes, rights, strict=True):
        a_only = int((right_a & ~right_b & scope).sum())
        b_only = int((~right_a & right_b & scope).sum())
        assert (row.a_only, row.b_only, row.method) == (a_only, b_only, "McNemar exact")
        assert row.p_value == pytest.approx(binomtest(a_only, a_only + b_only).pvalue)
        assert row.difference == pytest.approx((a_only - b_only) / scope.sum())
        assert row.low < row.difference < row.high


def test_balanced_accuracy_sign_flip_is_exact_enumeration():
    """Up to 12 discordant patients every sign pattern is counted: the p-value is the
    share of patterns whose balanced-accuracy difference is at least the observed one."""
    rng = np.random.default_rng(11)
    labels = np.repeat([0, 1, 2], [4, 4, 12])
    (p_a, q_a), (p_b, q_b) = (simulated_model(labels, 0.8, 3, rng) for _ in range(2))
    (row,) = compare_models(labels, p_a, p_b, q_a, q_b, ["balanced_accuracy"])
    right_a, right_b = q_a == labels, q_b == labels
    weights = (right_a.astype(float) - right_b) / (3 * np.bincount(labels)[labels])
    weights = weights[right_a != right_b]
    assert 0 < weights.size <= 12 and row.resamples == 0 and row.method == "sign-flip exact"
    signs = np.array(list(product((1, -1), repeat=weights.size)))
    exact = (np.abs(signs @ weights) >= abs(weights.sum()) - 1e-12).mean()
    assert row.difference == pytest.approx(weights.sum())
    assert row.p_value == pytest.approx(exact)


def test_balanced_accuracy_past_twelve_discordant_patients_matches_enumeration():
    labels = np.repeat([0, 1], [8, 8])
    predicted_a = labels.copy()
    predicted_b = labels.copy()
    wrong_b = np.arange(16)[:14]  # 14 discordant: a right, b wrong on 11, the other way on 3
    predicted_b[wrong_b[:11]] = 1 - labels[wrong_b[:11]]
    predicted_a[wrong_b[11:]] = 1 - labels[wrong_b[11:]]
    probabilities = np.full((16, 2), 0.5)
    (row,) = compare_models(labels, probabilities, probabilities, predicted_a, predicted_b,
                            ["balanced_accuracy"], resamples=20000)  # fmt: skip
    weights = np.where((predicted_a == labels) & (predicted_b != labels), 1, 0) - np.where(
        (predicted_a != labels) & (predicted_b == labels), 1, 0
    )
    weights = weights[weights != 0] / 16  # 2 classes x 8 patients each
    signs = np.array(list(product((1, -1), repeat=weights.size)))
    exact = (np.abs(signs @ weights) >= abs(weights.sum()) - 1e-12).mean()
    assert row.resamples == 20000 and row.method == "permutation"
    assert row.p_value == pytest.approx(exact, abs=0.005)


def test_scores_figures_get_a_permutation_test_and_a_stratified_bootstrap():
    labels, p_a, p_b = one_patient_apart()
    (auc,) = compare_models(labels, p_a, p_b, metrics=["roc_auc"], resamples=400)
    assert auc.method == "permutation" and auc.interval_method.startswith("wider of strat")
    assert auc.resamples == 400  # no draw is lost: every draw holds the Infarction patient
    assert auc.discordant == 1 and not auc.supported  # one patient's scores differ
    assert auc.low < 0 < auc.high  # the one Infarction patient's doubt is carried
    auc_row, f1_row = compare_models(labels, p_a, p_a.copy(), metrics=["roc_auc", "f1"])
    for row in (auc_row, f1_row):  # the same outputs: nothing to test
        assert row.difference == 0 and row.p_value == 1.0 and not row.supported
    assert math.isnan(f1_row.low) and math.isnan(f1_row.high)  # no interval of no width
    assert auc_row.low < 0 < auc_row.high  # the AUCs' own doubt, added in squares


def test_a_much_better_model_is_supported_on_every_figure():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 40)
    (p_a, q_a), (p_b, q_b) = (simulated_model(labels, acc, 3, rng) for acc in (0.95, 0.4))
    metrics = ["accuracy", "balanced_accuracy", "roc_auc", "f1", "sensitivity[0]"]
    rows = compare_models(labels, p_a, p_b, q_a, q_b, metrics, resamples=500)
    assert [row.metric for row in rows] == metrics
    for row in rows:
        assert row.supported and row.difference > 0.2 and row.low > 0, row
    # the permutation p-value is never 0: (0 + 1) / (500 + 1) at best
    assert rows[2].p_value == pytest.approx(1 / 501)


def test_the_same_seed_gives_the_same_rows():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 30)
    p_a, p_b = rng.dirichlet(np.ones(3), 30), rng.dirichlet(np.ones(3), 30)
    metrics = ["roc_auc", "f1", "balanced_accuracy"]
    first = compare_models(labels, p_a, p_b, metrics=metrics, resamples=200, seed=7)
    assert compare_models(labels, p_a, p_b, metrics=metrics, resamples=200, seed=7) == first
    other = compare_models(labels, p_a, p_b, metrics=metrics, resamples=200, seed=8)
    assert [(r.low, r.high) for r in other[:2]] != [(r.low, r.high) for r in first[:2]]


def test_the_evidence_rule():
    assert min_discordant(0.05) == 6  # 2 x 0.5^5 = 0.0625, 2 x 0.5^6 = 0.031
    assert min_discordant(0.01) == 8  # 2 x 0.5^7 = 0.0156, 2 x 0.5^8 = 0.0078
    assert is_supported(0.1, 0.3, 0.01, 6)
    assert not is_supported(0.1, 0.3, 0.01, 5)  # too few patients behind it
    assert not is_supported(-0.1, 0.3, 0.01, 20)  # the interval holds 0
    assert not is_supported(0.2, 0.2, 0.01, 20)  # an interval of no width bounds nothing
    assert not is_supported(float("nan"), float("nan"), 0.01, 20)
    assert not is_supported(0.1, 0.3, 0.05, 20)  # p must be below alpha


def test_holm_adjusted_rows_are_judged_on_the_adjusted_p():
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1, 2], 30)
    (p_a, q_a), (p_b, q_b) = (simulated_model(labels, acc, 3, rng) for acc in (0.95, 0.7))
    (row,) = compare_models(labels, p_a, p_b, q_a, q_b, ["accuracy"])
    assert row.supported and row.p_adjusted == row.p_value
    weak = [row] + [row.__class__(**{**row.__dict__, "p_value": 0.5})] * 3
    adjusted = holm_adjusted(weak)
    assert adjusted[0].p_adjusted == pytest.approx(min(1.0, 4 * row.p_value))
    assert adjusted[0].supported == (4 * row.p_value < 0.05)
    assert all(r.p_adjusted == 1.0 and not r.supported for r in adjusted[1:])  # 3 x 0.5
