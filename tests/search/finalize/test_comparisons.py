"""The comparisons finalize writes: which pairs, Holm's adjustment, and when a difference
counts as supported."""

import numpy as np
import pytest

from search.finalize.comparisons import Candidate, comparison_rows, holm, plain_sentence


def candidate(name, mode, probabilities, backbone="resnet18"):
    probabilities = np.asarray(probabilities, dtype=float)
    return Candidate(name, name, backbone, mode, probabilities, probabilities.argmax(axis=1))


def test_holm_matches_the_step_down_rule_worked_by_hand():
    # sorted: 0.01 x 4 = 0.04, 0.02 x 3 = 0.06, 0.03 x 2 = 0.06 (monotone), 0.5 x 1 = 0.5
    assert holm([0.03, 0.01, 0.5, 0.02]) == pytest.approx([0.06, 0.04, 0.5, 0.06])
    assert holm([0.4, 0.9]) == pytest.approx([0.8, 0.9])
    adjusted = holm([float("nan"), 0.2])
    assert np.isnan(adjusted[0]) and adjusted[1] == pytest.approx(0.2)  # one defined p


def test_pairs_each_winner_with_the_best_dual_with_one_view_and_the_baseline():
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    good = np.eye(3)[labels] * 0.7 + 0.1  # right every time
    noise = rng.dirichlet(np.ones(3), size=60)  # chance
    models = [
        candidate("resnet18 / dual", "dual", good),
        candidate("resnet18 / stress", "stress", noise),
        candidate("densenet121 / rest", "rest", noise, backbone="densenet121"),
    ]
    baseline = Candidate("baseline", None, None, None, noise, noise.argmax(axis=1))
    rows = comparison_rows("s", labels, models, baseline, resamples=1000, seed=1)
    pairs = [(r["kind"], r["model_a"], r["model_b"]) for r in rows[::3]]
    assert pairs == [
        ("against the best", "resnet18 / dual", "resnet18 / stress"),
        ("against the best", "resnet18 / dual", "densenet121 / rest"),
        ("input modes", "resnet18 / dual", "resnet18 / stress"),
        ("against the baseline", "resnet18 / dual", "baseline"),
    ]
    assert [r["metric"] for r in rows[:3]] == ["balanced_accuracy", "roc_auc", "sensitivity"]
    # a perfect model against chance on 60 patients: supported, and said so
    assert all(r["supported"] and r["difference"] > 0 for r in rows)
    assert "the data support a difference; resnet18 / dual is better" in plain_sentence(rows[0])


def test_a_small_difference_on_few_patients_is_not_supported():
    labels = np.array([0, 1] * 6)
    a = np.where(labels[:, None] == np.arange(2), 0.6, 0.4)
    b = a.copy()
    b[0] = b[0][::-1]  # one patient wrong
    rows = comparison_rows("s", labels, [candidate("a", "dual", a), candidate("b", "dual", b)],
                           None, resamples=300)  # fmt: skip
    assert [r["metric"] for r in rows] == ["balanced_accuracy", "roc_auc", "sensitivity[1]"]
    assert not any(r["supported"] for r in rows)
    assert "the 12 patients cannot tell these apart" in plain_sentence(rows[0])
    assert rows[1]["method"] == "DeLong"
