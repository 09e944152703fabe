"""Greedy ensemble selection: a small example worked out by hand, each round's pick against an
independent brute force with scikit-learn's losses, the kept rounds, sorted initialisation,
the weighted mean of the probabilities, ties and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, log_loss

from results.ensemble_selection import ensemble_probabilities, select_ensemble

# 4 patients, 2 classes; each candidate given by its probability of the true class
LABELS = np.array([0, 0, 1, 1])


def rows(true_class: list[float], labels: np.ndarray = LABELS) -> np.ndarray:
    """(n, 2) probabilities with `true_class[i]` on patient i's label."""
    p = np.empty((len(labels), 2))
    p[np.arange(len(labels)), labels] = true_class
    p[np.arange(len(labels)), 1 - labels] = 1 - np.asarray(true_class)
    return p


# A: confident, wrong on patient 4; B: unsure, right on patient 4; C: a coin
A, B, C = rows([0.9, 0.9, 0.9, 0.2]), rows([0.5, 0.5, 0.5, 0.9]), rows([0.5] * 4)


def random_candidates(seed: int, names: str, n: int = 30, classes: int = 3):
    """Labels and candidates that each know some patients better than the others do: per
    patient, a random share of the truth plus Dirichlet noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    truth = np.eye(classes)[labels]
    candidates = {}
    for name in names:
        share = rng.uniform(0.0, 0.8, (n, 1))
        candidates[name] = share * truth + (1 - share) * rng.dirichlet(np.ones(classes), n)
    return labels, candidates


def test_the_worked_example():
    # log loss = mean of -ln(p of the true class) over the 4 patients
    # round 1, alone: A (3 ln .9 + ln .2)/4 = (0.3161 + 1.6094)/4 = 0.4814
    #                 B (3 ln 2 + ln(1/.9))/4 = (2.0794 + 0.1054)/4 = 0.5462;  C ln 2 = 0.6931
    # round 2, A + x: A+A = A 0.4814;  A+B = (.7 .7 .7 .55): (3(0.3567) + 0.5978)/4 = 0.4170
    #                 A+C = (.7 .7 .7 .35): (1.0700 + 1.0498)/4 = 0.5300          -> B
    # round 3, A+B + x: 2A+B = (.7667 x3, .4333): (3(0.2657) + 0.8362)/4 = 0.4083
    #                   A+2B = (.6333 x3, .6667): (3(0.4568) + 0.4055)/4 = 0.4439
    #                   A+B+C = (.6333 x3, .5333): (1.3703 + 0.6286)/4 = 0.4997   -> A
    # round 4, 2A+B + x: 3A+B = (.8 x3, .375): (3(0.2231) + 0.9808)/4 = 0.4126
    #                    2A+2B = A+B 0.4170;  2A+B+C = (.7 x3, .45): 0.4671     -> A, worse
    # round 5, 3A+B + x: 4A+B = (.82 x3, .34): (0.5954 + 1.0788)/4 = 0.4185
    #                    3A+2B = (.74 x3, .48): (0.9033 + 0.7340)/4 = 0.4093
    #                    3A+B+C = (.74 x3, .4): 0.4549                        -> B, worse
    # the lowest is round 3's: weights A 2/3, B 1/3 (the best w for A in wA + (1-w)B is 0.652)
    selection = select_ensemble(LABELS, {"A": A, "B": B, "C": C}, rounds=5)
    assert selection.picks == ("A", "B", "A", "A", "B")
    assert selection.losses == pytest.approx([0.4814, 0.4170, 0.4083, 0.4126, 0.4093], abs=1e-4)
    assert selection.size == 3 and selection.loss == selection.losses[2]
    assert selection.weights == {"A": 2 / 3, "B": 1 / 3}
    assert list(selection.weights) == ["A", "B"]  # the order of first pick
    assert selection.metric == "log_loss"


def test_each_round_picks_the_brute_force_best_by_sklearn():
    labels, candidates = random_candidates(seed=3, names="XYZ")
    selection = select_ensemble(labels, candidates, rounds=3)
    picked: list[np.ndarray] = []
    for pick, loss in zip(selection.picks, selection.losses, strict=True):
        trials = {
            name: log_loss(labels, np.mean([*picked, p], axis=0), labels=[0, 1, 2])
            for name, p in candidates.items()
        }
        assert pick == min(trials, key=trials.__getitem__)
        assert loss == pytest.approx(trials[pick], rel=1e-12)
        picked.append(candidates[pick])
    assert len(set(selection.picks)) > 1  # a real ensemble, not one model thrice


@pytest.mark.parametrize("metric", ["balanced_accuracy", "brier"])
def test_the_other_losses_agree_with_an_independent_computation(metric):
    labels, candidates = random_candidates(seed=5, names="XYZW")
    selection = select_ensemble(labels, candidates, rounds=4, metric=metric)
    mean = np.mean([candidates[name] for name in selection.picks], axis=0)
    if metric == "balanced_accuracy":
        expected = 1 - balanced_accuracy_score(labels, mean.argmax(axis=1))
    else:
        expected = np.mean(((mean - np.eye(3)[labels]) ** 2).sum(axis=1))
    assert selection.losses[-1] == pytest.approx(expected, rel=1e-12)
    assert selection.metric == metric


def test_a_model_at_least_as_sure_of_the_truth_as_every_other_on_every_patient_is_alone():
    # mixing in any other model lowers the true class's probability on some patient and
    # raises it on none, so every round adds the dominant model again
    labels, noise = random_candidates(seed=7, names="PQRS")
    best = np.maximum(0.9, np.max([p[np.arange(30), labels] for p in noise.values()], axis=0))
    dominant = np.repeat(((1 - best) / 2)[:, None], 3, axis=1)
    dominant[np.arange(30), labels] = best
    candidates = {**noise, "D": dominant}  # last: it wins on merit, not by order
    selection = select_ensemble(labels, candidates, rounds=10)
    assert selection.picks == ("D",) * 10
    assert selection.weights == {"D": 1.0} and selection.size == 1


def test_log_loss_clips_a_probability_of_0_to_1e_15():
    sure_and_wrong = rows([1.0, 1.0, 1.0, 0.0])  # -ln 1e-15 = 34.54 on patient 4
    selection = select_ensemble(LABELS, {"W": sure_and_wrong}, rounds=1)
    assert selection.losses == pytest.approx([15 * math.log(10) / 4], rel=1e-12)


def test_sorted_initialisation_adds_the_best_singles_first_then_keeps_the_best_rounds():
    candidates = {"C": C, "B": B, "A": A}  # worst first: order is not rank
    assert select_ensemble(LABELS, candidates, rounds=3, initial=2).picks == ("A", "B", "A")
    forced = select_ensemble(LABELS, candidates, rounds=3, initial=3)
    assert forced.picks == ("A", "B", "C")  # A+B+C 0.4997 is worse than A+B 0.4170
    assert forced.size == 2 and forced.weights == {"A": 0.5, "B": 0.5}


def test_weights_sum_to_1_and_the_ensemble_is_their_weighted_mean():
    labels, candidates = random_candidates(seed=11, names="XYZW")
    selection = select_ensemble(labels, candidates, rounds=25)
    assert math.fsum(selection.weights.values()) == pytest.approx(1.0, abs=1e-12)
    kept = selection.picks[: selection.size]
    assert selection.weights == {name: kept.count(name) / len(kept) for name in selection.weights}
    probabilities = ensemble_probabilities(candidates, selection.weights)
    expected = sum(w * candidates[name] for name, w in selection.weights.items())
    np.testing.assert_allclose(probabilities, expected, rtol=1e-12)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    assert log_loss(labels, probabilities) == pytest.approx(selection.loss, rel=1e-12)


def test_ensemble_probabilities_normalise_the_weights_and_check_them():
    mean = ensemble_probabilities({"A": A, "B": B, "C": C}, {"A": 2, "B": 1})
    np.testing.assert_allclose(mean, (2 * A + B) / 3, rtol=1e-12)
    with pytest.raises(ValueError, match="'D'"):
        ensemble_probabilities({"A": A}, {"D": 1.0})
    with pytest.raises(ValueError, match="non-negative"):
        ensemble_probabilities({"A": A, "B": B}, {"A": 1.5, "B": -0.5})
    with pytest.raises(ValueError, match="no weights"):
        ensemble_probabilities({"A": A}, {})


def test_it_is_deterministic_and_ties_go_first_in_order():
    labels, candidates = random_candidates(seed=13, names="XYZ")
    assert select_ensemble(labels, candidates) == select_ensemble(labels, candidates)
    twins = {"A": A, "A2": A.copy(), "B": B}
    assert set(select_ensemble(LABELS, twins, rounds=6).weights) == {"A", "B"}
    reordered = {"A2": A.copy(), "A": A, "B": B}
    assert set(select_ensemble(LABELS, reordered, rounds=6).weights) == {"A2", "B"}


def test_of_tied_candidates_one_already_picked_wins_over_one_first_in_order():
    labels = np.array([0, 1])
    sure = np.array([[0.9, 0.1], [0.1, 0.9]])  # balanced accuracy 1
    wrong_once = np.array([[0.4, 0.6], [0.1, 0.9]])  # 0.5 alone; 1 averaged with `sure`
    selection = select_ensemble(
        labels, {"Q": wrong_once, "P": sure}, rounds=3, metric="balanced_accuracy"
    )
    assert selection.picks == ("P", "P", "P")  # round 2: P+Q ties P+P, P is in already
    assert selection.losses == (0.0, 0.0, 0.0) and selection.weights == {"P": 1.0}


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        ({}, "no candidates"),
        ({"A": A, "B": np.ones((4, 3)) / 3}, r"'B'.*\(4, 3\).*expected \(4, 2\)"),
        ({"A": A, "B": B[:3]}, r"'B'.*\(3, 2\).*expected \(4, 2\)"),
        ({"A": A[:3], "B": B}, r"'A'.*\(3, 2\).*expected \(4, 2\)"),  # n is the labels'
        ({"A": A, "B": B[:, 0]}, r"'B'.*\(4,\).*expected \(4, 2\)"),
        ({"A": A, "B": B * 3}, "'B'.*sum to 1"),
        ({"A": A, "B": B - 0.5}, "'B'.*non-negative"),
        ({"A": A, "B": np.full((4, 2), np.nan)}, "'B'.*finite"),
    ],
)
def test_bad_candidates_are_refused_by_name(candidates, message):
    with pytest.raises(ValueError, match=message):
        select_ensemble(LABELS, candidates)


@pytest.mark.parametrize(
    ("labels", "options", "message"),
    [
        (LABELS, {"metric": "roc_auc"}, "unknown metric 'roc_auc'"),
        (LABELS, {"rounds": 0}, "rounds must be at least 1"),
        (LABELS, {"initial": 4}, r"initial must be in \[0, 3\]"),
        (LABELS, {"rounds": 2, "initial": 3}, r"initial must be in \[0, 2\]"),
        (np.array([0, 0, 1, 2]), {}, r"class indices in \[0, 2\)"),
        (np.array([0.0, 0.0, 1.0, 1.0]), {}, "class indices"),
    ],
)
def test_bad_labels_and_options_are_refused(labels, options, message):
    with pytest.raises(ValueError, match=message):
        select_ensemble(labels, {"A": A, "B": B, "C": C}, **options)
