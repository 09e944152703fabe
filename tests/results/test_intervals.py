"""Intervals and the exact test from counts: Clopper-Pearson, Wilson and McNemar's exact
test against scipy's binomtest, Newcombe's paired interval and MOVER on cases worked by
hand, Newcombe's AUC interval at the equation it solves; all keep a width at one patient."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from results.intervals import (
    auc_interval,
    clopper_pearson,
    mcnemar_exact,
    mover_mean,
    paired_difference,
    wilson,
)

Z = 1.959963984540054


@pytest.mark.parametrize("n", [1, 2, 5, 17, 40])
def test_clopper_pearson_and_wilson_match_scipy_binomtest(n):
    counts = np.arange(n + 1)
    exact, score = clopper_pearson(counts, n), wilson(counts, n)
    for k in counts:
        reference = binomtest(int(k), n).proportion_ci(0.95, method="exact")
        assert (exact[0][k], exact[1][k]) == pytest.approx(reference, abs=1e-9)
        reference = binomtest(int(k), n).proportion_ci(0.95, method="wilson")
        assert (score[0][k], score[1][k]) == pytest.approx(reference, abs=1e-9)
    assert (exact[1] - exact[0] > 0).all() and (score[1] - score[0] > 0).all()


def test_one_patient_leaves_almost_the_whole_range():
    assert tuple(clopper_pearson(0, 1)) == pytest.approx((0.0, 0.975))
    assert tuple(clopper_pearson(1, 1)) == pytest.approx((0.025, 1.0))
    assert all(math.isnan(x) for x in clopper_pearson(0, 0))


@pytest.mark.parametrize("a_only, b_only", [(0, 0), (1, 0), (5, 0), (6, 0), (7, 2), (3, 9)])
def test_mcnemar_exact_is_the_binomial_test_of_the_discordant_patients(a_only, b_only):
    expected = 1.0 if a_only + b_only == 0 else binomtest(a_only, a_only + b_only).pvalue
    assert float(mcnemar_exact(a_only, b_only)) == pytest.approx(expected, abs=1e-12)
    # five discordant patients all one way cannot reach 5 %, six can: 2 x 0.5^k
    assert float(mcnemar_exact(5, 0)) == pytest.approx(0.0625)
    assert float(mcnemar_exact(6, 0)) == pytest.approx(0.03125)


def test_newcombe_paired_interval_on_one_patient_worked_by_hand():
    # One patient, right by a only: p_a = 1, p_b = 0, difference 1. Wilson of 1/1 is
    # [0.2065, 1], of 0/1 [0, 0.7935]; a margin is empty, so phi = 0.
    # low = 1 - sqrt((1 - 0.2065)^2 + (0.7935 - 0)^2) = 1 - 0.7935 sqrt 2; high = 1.
    low, high = paired_difference(0, 1, 0, 0)
    upper_of_none = binomtest(0, 1).proportion_ci(method="wilson").high
    assert float(low) == pytest.approx(1 - upper_of_none * math.sqrt(2))
    assert float(low) == pytest.approx(-0.1221, abs=1e-4) and float(high) == 1.0
    # both right: difference 0, and still +-0.79 wide
    low, high = paired_difference(1, 0, 0, 0)
    assert (float(low), float(high)) == pytest.approx((-upper_of_none, upper_of_none))


def test_newcombe_paired_interval_with_correlated_pairs_worked_by_hand():
    # 20 patients: both right 10, a only 2, b only 1, neither 7. p_a = 12/20, p_b = 11/20.
    # ad - bc = 70 - 2 = 68 > n/2, shrunk to 58; phi = 58 / sqrt(12 * 8 * 11 * 9).
    la, ua = binomtest(12, 20).proportion_ci(method="wilson")
    lb, ub = binomtest(11, 20).proportion_ci(method="wilson")
    pa, pb, phi = 0.6, 0.55, 58 / math.sqrt(12 * 8 * 11 * 9)
    below = math.sqrt((pa - la) ** 2 - 2 * phi * (pa - la) * (ub - pb) + (ub - pb) ** 2)
    above = math.sqrt((pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2)
    low, high = paired_difference(10, 2, 1, 7)
    assert (float(low), float(high)) == pytest.approx((0.05 - below, 0.05 + above))
    # the pairs' correlation narrows it against two independent samples (phi = 0)
    assert below < math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)


def test_mover_of_equal_weights_worked_by_hand():
    # two independent estimates 0.8 [0.6, 0.9] and 0.4 [0.1, 0.7], mean 0.6:
    # low = 0.6 - sqrt(0.25 (0.2^2 + 0.3^2)), high = 0.6 + sqrt(0.25 (0.1^2 + 0.3^2))
    low, high = mover_mean([0.8, 0.4], [0.6, 0.1], [0.9, 0.7])
    assert low == pytest.approx(0.6 - math.sqrt(0.25 * 0.13))
    assert high == pytest.approx(0.6 + math.sqrt(0.25 * 0.10))


@pytest.mark.parametrize(
    "auc, positives, negatives", [(1.0, 1, 31), (0.8, 5, 26), (0.5, 50, 50), (0.0, 3, 3)]
)
def test_newcombe_auc_interval_solves_its_score_equation(auc, positives, negatives):
    low, high = auc_interval(auc, positives, negatives)
    assert 0 <= low <= auc <= high <= 1 and high - low > 0.05
    star = (positives + negatives) / 2 - 1

    def variance(t):
        spread = 1 + star * (1 - t) / (2 - t) + star * t / (1 + t)
        return t * (1 - t) * spread / (positives * negatives)

    for bound in (low, high):
        if 0 < bound < 1:
            assert (auc - bound) ** 2 == pytest.approx(Z**2 * variance(bound), abs=1e-9)
    assert all(math.isnan(x) for x in auc_interval(0.7, 0, 10))


def test_auc_interval_narrows_with_more_patients():
    widths = [np.subtract(*auc_interval(0.8, m, m)[::-1]) for m in (5, 50, 500)]
    assert widths[0] > widths[1] > widths[2] > 0
