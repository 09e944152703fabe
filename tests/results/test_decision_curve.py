"""Decision curves: a perfect model's net benefit is the prevalence, acting on all follows
its own formula, an uninformative model does no better than the better of acting on all
or none, and bad input is refused with what was expected."""

from __future__ import annotations

import numpy as np
import pytest

from results.decision_curve import DEFAULT_THRESHOLDS, net_benefit


def test_a_perfect_model_gains_every_positive_and_costs_nothing():
    positive = np.array([True] * 30 + [False] * 70)
    curve = net_benefit(positive.astype(float), positive)
    assert np.allclose(curve["net_benefit"], 0.3)
    assert np.allclose(curve["treat_none"], 0.0)
    # acting on all: prevalence less the false positives weighted by the threshold's odds
    odds = curve["threshold"] / (1 - curve["threshold"])
    assert np.allclose(curve["treat_all"], 0.3 - 0.7 * odds)
    assert (curve["net_benefit"] >= curve["treat_all"]).all()


def test_an_uninformative_model_does_no_better_than_all_or_none():
    rng = np.random.default_rng(0)
    positive = rng.random(20000) < 0.3
    curve = net_benefit(rng.random(20000), positive)
    best_default = np.maximum(curve["treat_all"], curve["treat_none"])
    assert (curve["net_benefit"] <= best_default + 0.01).all()
    # and a model that ranks well beats both over the thresholds between
    informed = np.clip(positive * 0.6 + rng.normal(0.2, 0.15, len(positive)), 0, 1)
    middle = net_benefit(informed, positive, np.array([0.2, 0.3, 0.4]))
    assert (middle["net_benefit"] > np.maximum(middle["treat_all"], 0)).all()


def test_the_default_thresholds_span_the_clinical_range():
    assert DEFAULT_THRESHOLDS[0] == 0.05 and DEFAULT_THRESHOLDS[-1] == 0.95
    assert len(net_benefit([0.2, 0.8], [False, True])) == len(DEFAULT_THRESHOLDS)


@pytest.mark.parametrize(
    ("risk", "positive", "thresholds", "message"),
    [([0.2, 0.8], [True], DEFAULT_THRESHOLDS, "2 risks for 1 patients"),
     ([0.2, 1.8], [True, False], DEFAULT_THRESHOLDS, r"probabilities in \[0, 1\]"),
     ([0.2, 0.8], [True, False], [0.0, 0.5], "strictly between 0 and 1")],
)  # fmt: skip
def test_bad_input_is_refused_with_what_was_expected(risk, positive, thresholds, message):
    with pytest.raises(ValueError, match=message):
        net_benefit(risk, positive, thresholds)
