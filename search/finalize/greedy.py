"""An ensemble across the search's trials, backbones and modes included: greedy ensemble
selection (Caruana et al. 2004, as AutoGluon, `results.ensemble_selection`) on the held-out
predictions the search kept of every trial (out-of-fold with `--folds`: every training
patient; else the validation patients), then finalized as one more candidate: each member
retrained (a winner's first seed is reused), their test probabilities averaged with the
selection's weights, tested once on the same held-out patients and compared like the
winners.

The selection reads only the search's own predictions, never the test split. It is chosen
on the same predictions that ranked the trials, so its cross-validated loss leans
optimistic; its test figures do not."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from results import load_table
from results.ensemble_selection import ensemble_probabilities, select_ensemble
from results.leaderboard import rank_trials
from results.records import TrialStatus
from search.files import write_atomic
from search.inference.evaluate import (
    choose_threshold,
    evaluate_predictions,
    predict_classes,
)
from search.records import EnsembleFinal, GreedyEnsemble

__all__ = [
    "each_patient_once",
    "ensemble_rows",
    "finalize_ensemble",
    "select_greedy_ensemble",
]

ROUNDS = 25


def each_patient_once(patients, labels, probabilities) -> tuple[np.ndarray, np.ndarray]:
    """Labels and class probabilities in patient order, a patient's repeats averaged."""
    by_patient: dict[str, list] = {}
    label_of: dict[str, int] = {}
    for patient, label, p in zip(patients, labels, probabilities, strict=True):
        by_patient.setdefault(patient, []).append(p)
        label_of[patient] = label
    ids = sorted(by_patient)
    averaged = np.array([np.mean(by_patient[i], axis=0) for i in ids])
    return np.array([label_of[i] for i in ids], dtype=np.int64), averaged


def select_greedy_ensemble(
    results: str, search: str, trials: pd.DataFrame, class_names: Sequence[str]
) -> GreedyEnsemble | None:
    """The selection over every finished trial whose kept predictions cover the same
    patients as the best trial's, in leaderboard order (ties go to the better ranked);
    None when fewer than two trials qualify or the selection keeps a single trial."""
    unfinished = [TrialStatus.ERRORED, TrialStatus.INTERRUPTED]
    ranked = rank_trials(trials[~trials["status"].isin(unfinished)])
    rows = load_table(results, "predictions", search)
    if ranked.empty or rows.empty:
        return None
    candidates: dict[str, np.ndarray] = {}
    patients, labels = None, None
    for trial_id in ranked["trial_id"]:
        kept = rows[rows["trial_id"] == trial_id]
        if kept.empty:
            continue
        ids = tuple(sorted(set(kept["patient_id"])))
        y, p = each_patient_once(kept["patient_id"],
                                 [list(class_names).index(c) for c in kept["label"]],
                                 list(kept["probabilities"]))  # fmt: skip
        if patients is None:
            patients, labels = ids, y
        if ids == patients:
            candidates[trial_id] = p
    if len(candidates) < 2:
        return None
    selection = select_ensemble(labels, candidates, rounds=ROUNDS)
    if len(selection.weights) < 2:
        return None
    by_id = ranked.set_index("trial_id", drop=False)
    members = {t: by_id.loc[t].to_dict() for t in selection.weights}
    probabilities = ensemble_probabilities(candidates, selection.weights)
    single = selection.losses[0]  # the first round picks the best candidate alone
    return GreedyEnsemble(selection, members, labels, probabilities, len(candidates), single)


def finalize_ensemble(
    ensemble: GreedyEnsemble,
    member_predictions: Callable[[dict], tuple[tuple[str, ...], np.ndarray, Path]],
    labels_of: Callable[[tuple[str, ...]], np.ndarray],
    class_names: tuple[str, ...],
    out: Path,
    bootstrap: int,
    seed: int,
) -> EnsembleFinal:
    """Test the ensemble once: `member_predictions(trial row)` gives a member's retrained
    test ids, probabilities and model folder; the weighted mean is evaluated on
    `labels_of(test ids)`. Writes `out/ensemble.json` (members, weights, selection)."""
    weights = ensemble.selection.weights
    test_ids, total, folders = None, None, {}
    for trial_id, weight in weights.items():
        ids, probabilities, folder = member_predictions(ensemble.members[trial_id])
        if test_ids is not None and ids != test_ids:
            raise AssertionError("ensemble members were tested on different patients")
        test_ids, folders[trial_id] = ids, folder
        total = weight * probabilities if total is None else total + weight * probabilities
    binary = len(class_names) == 2
    threshold = choose_threshold(ensemble.labels, ensemble.probabilities) if binary else None
    predicted = predict_classes(total, threshold)
    labels = labels_of(test_ids)
    figures = evaluate_predictions(labels, total, class_names, threshold, bootstrap, seed)
    record = {
        "format": "polarmap-weighted-ensemble/1",
        "class_names": list(class_names),
        "threshold": threshold,
        "members": [
            {"trial_id": t, "weight": w, "backbone": ensemble.members[t]["backbone"],
             "mode": ensemble.members[t]["mode"],
             "model": os.path.relpath(folders[t], out)}  # the finals folder can move
            for t, w in weights.items()
        ],
        "selection": {"method": "greedy ensemble selection (Caruana et al. 2004)",
                      "metric": ensemble.selection.metric, "rounds": ROUNDS,
                      "rounds_kept": ensemble.selection.size,
                      "loss": ensemble.selection.loss,
                      "best_single_loss": ensemble.best_single_loss,
                      "candidates": ensemble.candidates},
    }  # fmt: skip
    write_atomic(out / "ensemble.json", json.dumps(record, indent=2))
    return EnsembleFinal(ensemble, out, test_ids, total, predicted, threshold, figures, folders)


def ensemble_rows(search: str, final: EnsembleFinal, seed: int) -> list[dict]:
    """Rows of the `ensembles` table: one per member."""
    selection = final.ensemble.selection
    f = final.figures
    return [
        {"search": search, "trial_id": t, "backbone": final.ensemble.members[t]["backbone"],
         "mode": final.ensemble.members[t]["mode"], "weight": w, "metric": selection.metric,
         "rounds": ROUNDS, "rounds_kept": selection.size, "candidates": final.ensemble.candidates,
         "selection_loss": selection.loss, "best_single_loss": final.ensemble.best_single_loss,
         "seed": seed, "test_patients": f.count,
         "test_balanced_accuracy": f.macro["balanced_accuracy"],
         "test_roc_auc": f.macro["roc_auc"], "model_dir": str(final.member_folders[t])}
        for t, w in selection.weights.items()
    ]  # fmt: skip
