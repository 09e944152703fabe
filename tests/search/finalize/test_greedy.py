"""The greedy ensemble finalize builds: chosen from the search's kept held-out
predictions of the same patients, in leaderboard order, never from errored trials, with
the weights of `results.ensemble_selection`; tested as the weighted mean of its members'
test probabilities, its threshold from the held-out predictions."""

import json

import numpy as np
import pandas as pd
import pytest

from results import load_trials
from results.ensemble_selection import select_ensemble
from results.rows import TrialRows
from results.store import ResultStore
from search.finalize.greedy import finalize_ensemble, select_greedy_ensemble

CLASSES = ("Normal", "Abnormal")
N = 30


def held_out(trial_id: str, probabilities: np.ndarray, labels: np.ndarray) -> list[dict]:
    return [
        {"search": "s", "trial_id": trial_id, "epoch": 3, "patient_id": f"P{i:02d}",
         "repeat": 0, "fold": i % 3, "label": CLASSES[labels[i]],
         "predicted": CLASSES[int(p.argmax())], "probabilities": [float(v) for v in p]}
        for i, p in enumerate(probabilities)
    ]  # fmt: skip


@pytest.fixture
def store(tmp_path):
    """Four trials' held-out predictions of 30 patients: A right on the first half, B on
    the second, C no better than chance, D errored (though it would look perfect)."""
    rng = np.random.default_rng(0)
    labels = np.arange(N) % 2
    truth = np.eye(2)[labels]
    half = np.arange(N) < N // 2
    a = np.where(half[:, None], 0.9 * truth + 0.05, 0.5)
    b = np.where(~half[:, None], 0.9 * truth + 0.05, 0.5)
    c = rng.dirichlet([1, 1], size=N)
    results = ResultStore(tmp_path)
    for trial_id, p, score, status in (
        ("A", a, 0.9, "completed"),
        ("B", b, 0.8, "stopped"),
        ("C", c, 0.7, "completed"),
        ("D", truth, 1.0, "errored"),
    ):
        trial = {"search": "s", "trial_id": trial_id, "backbone": f"net{trial_id}",
                 "mode": "dual", "status": status, "best_selection": score,
                 "best_val_loss": 1 - score}  # fmt: skip
        results.write_trial(TrialRows(trial, [], [], predictions=held_out(trial_id, p, labels)))
    return tmp_path, labels, {"A": a, "B": b, "C": c}


def test_selects_complementary_trials_in_rank_order_without_errored_ones(store):
    root, labels, candidates = store
    trials = load_trials(root, "s")
    ensemble = select_greedy_ensemble(str(root), "s", trials, CLASSES)
    expected = select_ensemble(labels, candidates, rounds=25)  # ranked A, B, C; D errored
    assert ensemble.selection == expected
    assert set(ensemble.members) == {"A", "B"} and ensemble.candidates == 3
    assert ensemble.backbones == ("netA", "netB")
    assert ensemble.selection.loss < ensemble.best_single_loss  # better than A alone
    w = expected.weights
    mean = w["A"] * candidates["A"] + w["B"] * candidates["B"]
    np.testing.assert_allclose(ensemble.probabilities, mean)


def test_no_ensemble_when_one_trial_is_all_the_selection_keeps(store):
    root, _, _ = store
    trials = load_trials(root, "s")
    only_a = trials[trials["trial_id"].isin(["A", "C", "D"])]
    assert select_greedy_ensemble(str(root), "s", only_a, CLASSES) is None


def test_the_ensemble_is_the_weighted_mean_of_its_members_tested_once(store, tmp_path):
    root, _, _ = store
    ensemble = select_greedy_ensemble(str(root), "s", load_trials(root, "s"), CLASSES)
    test_ids = tuple(f"T{i}" for i in range(8))
    test_labels = np.array([0, 1] * 4)
    member_test = {"A": np.tile([0.8, 0.2], (8, 1)), "B": np.eye(2)[test_labels] * 0.6 + 0.2}

    def member(trial):
        return test_ids, member_test[trial["trial_id"]], tmp_path / trial["trial_id"]

    final = finalize_ensemble(ensemble, member, lambda ids: test_labels, CLASSES,
                              tmp_path / "ensemble", bootstrap=20, seed=0)  # fmt: skip
    w = ensemble.selection.weights
    np.testing.assert_allclose(final.test_probabilities,
                               w["A"] * member_test["A"] + w["B"] * member_test["B"])  # fmt: skip
    record = json.loads((tmp_path / "ensemble" / "ensemble.json").read_text())
    assert [(m["trial_id"], m["weight"]) for m in record["members"]] == list(w.items())
    assert record["threshold"] == final.threshold is not None  # from held-out predictions
    assert final.figures.count == 8 and final.test_ids == test_ids
    assert set(pd.unique(final.test_predicted)) <= {0, 1}
