"""The comparisons finalize writes: which pairs and figures, Holm's adjustment per figure,
when a difference counts as supported, and the words that say on how many patients it
rests."""

import numpy as np
import pytest

from results.paired import holm
from search.finalize.comparisons import Candidate, comparison_rows
from search.reporting.comparison_text import plain_sentence


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
    rows = comparison_rows("s", labels, models, baseline, 1000, 1, class_names=CLASSES)
    figures = ["accuracy", "balanced_accuracy", "roc_auc", "sensitivity[0]",
               "sensitivity[1]", "sensitivity[2]"]  # fmt: skip
    pairs = [(r["kind"], r["model_a"], r["model_b"]) for r in rows[:: len(figures)]]
    assert pairs == [
        ("against the best", "resnet18 / dual", "resnet18 / stress"),
        ("against the best", "resnet18 / dual", "densenet121 / rest"),
        ("input modes", "resnet18 / dual", "resnet18 / stress"),
        ("against the baseline", "resnet18 / dual", "baseline"),
    ]
    assert [r["metric"] for r in rows[: len(figures)]] == figures
    assert [r["class"] for r in rows[3:6]] == list(CLASSES)
    assert rows[3]["figure"] == "sensitivity of Infarction"
    # a perfect model against chance on 60 patients: supported, and said so
    assert all(r["supported"] and r["difference"] > 0 for r in rows)
    sentence = plain_sentence(rows[1])
    assert "the data support a difference; resnet18 / dual is better" in sentence
    assert rows[1]["evidence"].startswith(f"{rows[1]['discordant']} patients of classes ")
    assert "right by one model only (" in rows[1]["evidence"]
    # Holm within each figure: four comparisons of the accuracy
    accuracy = [r for r in rows if r["metric"] == "accuracy"]
    assert [r["p_holm"] for r in accuracy] == pytest.approx(holm([r["p_value"] for r in accuracy]))


CLASSES = ("Infarction", "Ischemia", "Normal")


def test_one_patient_apart_is_said_to_rest_on_that_patient():
    """The issue's case: the demo's mix, two models apart on the one Infarction patient."""
    labels = np.repeat([0, 1, 2], [1, 5, 26])
    a = np.eye(3)[labels] * 0.7 + 0.1
    b = a.copy()
    b[0] = [0.1, 0.1, 0.8]
    rows = comparison_rows("s", labels, [candidate("a", "dual", a), candidate("b", "stress", b)],
                           None, 300, class_names=CLASSES)  # fmt: skip
    assert not any(r["supported"] for r in rows)
    balanced = next(r for r in rows if r["metric"] == "balanced_accuracy")
    assert balanced["difference"] == pytest.approx(1 / 3) and balanced["high"] > balanced["low"]
    assert plain_sentence(balanced).endswith(
        ": rests on 1 patient of class Infarction right by one model only (1 by a, 0 by b): "
        "cannot tell."
    )
    recall = next(r for r in rows if r["metric"] == "sensitivity[0]")
    assert "rests on 1 patient of class Infarction right by one model" in plain_sentence(recall)
    auc = next(r for r in rows if r["metric"] == "roc_auc")
    assert auc["evidence"] == "1 patient of class Infarction scored differently"
    assert all(r["high"] > r["low"] for r in rows if r["low"] == r["low"])  # no zero width


def test_a_small_difference_on_few_patients_is_not_supported():
    labels = np.array([0, 1] * 12)
    a = np.where(labels[:, None] == np.arange(2), 0.6, 0.4)
    b = a.copy()
    b[[0, 1]] = b[[0, 1]][:, ::-1]  # two patients wrong
    rows = comparison_rows("s", labels, [candidate("a", "dual", a), candidate("b", "dual", b)],
                           None, 300, class_names=("Normal", "CAD"))  # fmt: skip
    assert [r["metric"] for r in rows] == ["accuracy", "balanced_accuracy", "roc_auc",
                                           "sensitivity[0]", "sensitivity[1]"]  # fmt: skip
    assert not any(r["supported"] for r in rows)
    assert plain_sentence(rows[0]).endswith(
        "rests on 2 patients of classes Normal (1) and CAD (1) right by one model only "
        "(2 by a, 0 by b): cannot tell."
    )
    assert rows[2]["method"] == "permutation" and rows[0]["method"] == "McNemar exact"
