"""Class-conditional conformal sets: each class covered at 1 - alpha on exchangeable
patients (a rare one too), smaller sets for a better model, a warning for a class too
small to calibrate, the same set for a patient every time; a calibration stored as JSON
reads back into the very same sets, and a bad record is refused naming its field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from results.conformal import ConformalSets, calibrate_sets, coverage_table, least_calibration

CLASSES = ["Infarction", "Ischemia", "Normal"]


def patients(count: int, seed: int, skill: float = 2.0, shares=(0.1, 0.3, 0.6)):
    """(probabilities, labels): a model whose probabilities favour the true class by
    `skill` (softmax of noisy logits), over patients drawn with these class shares."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(shares), size=count, p=shares)
    logits = rng.normal(0, 1, (count, len(shares)))
    logits[np.arange(count), labels] += skill
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities, labels


def test_each_class_is_covered_at_one_minus_alpha_even_a_rare_one():
    calibration, test = patients(20000, 0), patients(6000, 1)  # calibration varies little
    sets = calibrate_sets(*calibration, alpha=0.1).predict(test[0])
    table = coverage_table(sets, test[1], CLASSES).set_index("class")
    for name in CLASSES:  # 90 % within the interval's reach, and not far above
        assert table.loc[name, "coverage_upper"] >= 0.9, table
        assert 0.86 <= table.loc[name, "coverage"] <= 0.95, table
    # a plain (not class-conditional) set would undercover the rare class: its own
    # calibration keeps Infarction, 10 % of patients, at 90 % as well
    assert table.loc["Infarction", "patients"] < 0.15 * len(test[1])
    # a model this sharp leaves few patients doubtful: sets of about one class
    assert table.loc["all", "mean_set_size"] < 1.2
    assert table.loc["all", "singleton_share"] > 0.85


def test_a_better_model_gives_smaller_sets_and_more_singletons():
    tables = []
    for skill in (1.0, 4.0):
        calibration, test = patients(2000, 2, skill), patients(2000, 3, skill)
        sets = calibrate_sets(*calibration, alpha=0.1).predict(test[0])
        tables.append(coverage_table(sets, test[1], CLASSES).set_index("class").loc["all"])
    weak, strong = tables
    assert strong["mean_set_size"] < weak["mean_set_size"]
    assert strong["singleton_share"] > weak["singleton_share"]


def test_a_class_too_small_to_calibrate_is_named_and_always_in_the_set():
    probabilities, labels = patients(400, 4)
    rare = np.flatnonzero(labels == 0)[5:]  # keep 5 Infarction patients
    keep = np.setdiff1d(np.arange(len(labels)), rare)
    calibrated = calibrate_sets(probabilities[keep], labels[keep], alpha=0.1)
    assert least_calibration(0.1) == 9 and calibrated.counts[0] == 5
    assert calibrated.too_few() == [0]
    assert calibrated.predict(patients(300, 5)[0])[:, 0].all()  # cannot be ruled out


def test_a_patients_set_is_the_same_whatever_the_seed():
    # (smoothed p-values break ties at random: a set would depend on a draw)
    calibration, test = patients(300, 6), patients(300, 7)
    first = calibrate_sets(*calibration, alpha=0.2, seed=3).predict(test[0])
    again = calibrate_sets(*calibration, alpha=0.2, seed=4).predict(test[0])
    assert np.array_equal(first, again)


@pytest.mark.parametrize(
    ("alpha", "labels", "message"),
    [(1.5, [0, 1], "alpha: expected a level between 0 and 1"),
     (0.1, [0, 1, 2], "3 labels for probabilities of shape"),
     (0.1, [0, 5], "expected class indices 0-2")],
)  # fmt: skip
def test_bad_calibration_input_is_refused_with_what_was_expected(alpha, labels, message):
    with pytest.raises(ValueError, match=message):
        calibrate_sets(np.full((2, 3), 1 / 3), np.array(labels), alpha=alpha)


def test_a_calibration_read_back_from_json_gives_the_same_sets():
    probabilities, labels = patients(300, 8)
    probabilities = probabilities.astype(np.float32)  # as a model gives them
    calibrated = calibrate_sets(probabilities, labels, alpha=0.1, seed=5)
    text = json.dumps(calibrated.to_json())  # as a model folder stores it
    loaded = ConformalSets.from_json(json.loads(text))
    assert loaded == calibrated and loaded.counts == calibrated.counts
    # the calibration patients themselves: each score sits on a set's very boundary
    test = np.concatenate([probabilities, patients(500, 9)[0]])
    sets = calibrated.predict(test)
    assert np.array_equal(loaded.predict(test), sets)
    assert 0 < sets.sum(axis=1).mean() < 3  # sets neither all empty nor all full


def _record(**change):
    record = calibrate_sets(*patients(60, 10), alpha=0.2).to_json()
    return {**record, **change}


@pytest.mark.parametrize(
    ("record", "message"),
    [(["polarmap-conformal/1"], "conformal calibration: expected a JSON object, got a list of 1"),
     (_record(format="polarmap-model/2"), "conformal format: expected 'polarmap-conformal/1'"),
     ({k: v for k, v in _record().items() if k != "alpha"}, "conformal alpha: missing"),
     (_record(alpha=1.5), "conformal alpha: expected a level between 0 and 1, got 1.5"),
     (_record(alpha="0.1"), "conformal alpha: expected a level between 0 and 1, got '0.1'"),
     (_record(seed=0.5), "conformal seed: expected an integer, got 0.5"),
     (_record(scores=[]), "conformal scores: expected one list of finite numbers per class"),
     (_record(scores=[[0.1], ["a"]]), "conformal scores: expected one list of finite"),
     (_record(scores=[[0.1], [float("nan")]]), "conformal scores: expected one list of finite"),
     (_record(counts=[1, 2, 3]), r"conformal counts: expected the number of scores of each "
      r"class, \[\d+, \d+, \d+\], got \[1, 2, 3\]")],
    ids=["a-list", "format", "no-alpha", "alpha-out-of-range", "alpha-text", "seed",
         "no-classes", "a-score-text", "a-score-nan", "counts"],
)  # fmt: skip
def test_a_bad_calibration_record_is_refused_naming_its_field(record, message):
    with pytest.raises(ValueError, match=message):
        ConformalSets.from_json(record)


def test_probabilities_that_are_not_numbers_are_refused():
    probabilities = np.full((2, 3), 1 / 3)
    probabilities[1, 2] = np.nan
    with pytest.raises(ValueError, match="calibration probabilities: expected finite"):
        calibrate_sets(probabilities, np.array([0, 1]))
