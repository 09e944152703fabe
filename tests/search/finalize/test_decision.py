"""A two-class search's decision curves: one curve per winner's first seed, the ensemble
and the baseline on the same test patients, and the report's plot of them; none for
other class sets."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from results.decision_curve import net_benefit
from search.finalize.decision import decision_curve_rows
from search.records import BASELINE_NAME, ENSEMBLE_NAME
from search.reporting.trust import decision_curve_parts

LABELS = np.array([0, 0, 0, 1, 1, 0, 1, 0])


def probabilities(risk) -> np.ndarray:
    risk = np.asarray(risk, dtype=float)
    return np.stack([1 - risk, risk], axis=1)


def final(trial_id: str, seed: int, risk) -> SimpleNamespace:
    trial = {"trial_id": trial_id, "backbone": "resnet18", "mode": "stress"}
    return SimpleNamespace(trial=trial, seed=seed, test_probabilities=probabilities(risk))


def comparisons(ensemble: bool = True) -> SimpleNamespace:
    baseline = SimpleNamespace(test_probabilities=probabilities(np.full(8, 0.4)))
    grouped = SimpleNamespace(test_probabilities=probabilities(LABELS * 0.6 + 0.2))
    return SimpleNamespace(baseline_model=baseline, ensemble=grouped if ensemble else None)


def test_one_curve_per_first_seed_the_ensemble_and_the_baseline():
    perfect = final("t1", 0, LABELS * 0.8 + 0.1)
    finals = [perfect, final("t1", 1, np.full(8, 0.5)), final("t2", 0, np.full(8, 0.9))]

    rows = pd.DataFrame(decision_curve_rows("s", finals, comparisons(), LABELS, ("No", "CAD")))

    models = list(dict.fromkeys(rows["model"]))
    assert models == ["resnet18 / stress", ENSEMBLE_NAME, BASELINE_NAME]
    assert set(rows["trial_id"].dropna()) == {"t1", "t2"}
    first = rows[(rows["trial_id"] == "t1")]
    assert (first["seed"] == 0).all()  # the first seed, not seed 1
    expected = net_benefit(LABELS * 0.8 + 0.1, LABELS == 1)
    assert np.allclose(first["net_benefit"], expected["net_benefit"])
    assert np.allclose(first["treat_all"], expected["treat_all"])
    assert (rows["positive_class"] == "CAD").all() and (rows["patients"] == 8).all()
    baseline = rows[rows["model"] == BASELINE_NAME]
    assert (baseline["net_benefit"][baseline["threshold"] > 0.4] == 0).all()  # acts on no one


def test_no_curves_for_three_classes_and_a_plot_for_two():
    assert decision_curve_rows("s", [], comparisons(), LABELS, ("a", "b", "c")) == []
    rows = decision_curve_rows("s", [final("t1", 0, LABELS * 0.8 + 0.1)], comparisons(False),
                               LABELS, ("No", "CAD"))  # fmt: skip
    parts = decision_curve_parts(pd.DataFrame(rows))
    assert "Decision curves" in parts[0] and "data:image/png;base64," in parts[-1]
    assert "CAD" in parts[1]
    assert decision_curve_parts(pd.DataFrame()) == []
