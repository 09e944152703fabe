"""A cross-validated search as a user with the first seed's data runs it: 87 patients (65
Normal, 18 Ischemia, 4 Infarction). The default split is refused with a suggestion that
`search run` takes; the suggested cross-validated search runs, stops trials early, keeps
its out-of-fold predictions, and `finalize` exports a fold ensemble that `predict` uses."""

from __future__ import annotations

import contextlib
import csv
import io
import re

import numpy as np
import pytest
import torch

from results import load_table, load_trials
from search.cli import main
from search.inference.export import load_model, predict_probabilities
from tests.conftest import write_example_dataset

pytestmark = pytest.mark.slow

FIRST_SEED = {"Infarction": 4, "Ischemia": 18, "Normal": 65}


@pytest.fixture(scope="module")
def first_seed_search(tmp_path_factory):
    """The refusal's message, then the suggested search (one pair, 6 trials of 2 + 4
    epochs: all to a rung at 2, the best 2 on to 6) and its finalize: the root folder and
    what was printed."""
    root = tmp_path_factory.mktemp("first-seed")
    manifest = write_example_dataset(root / "data", size=64, counts=FIRST_SEED)
    base = [
        "search", "run", "--data", str(manifest), "--space", "tiny", "--backbones",
        "test_resnet", "--modes", "dual", "--warmup-epochs", "2", "--finetune-epochs", "4",
        "--storage", str(root / "runs"), "--name", "cv", "--quiet",
    ]  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as env,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        env.setenv("POLARMAP_CACHE", str(root / "cache"))
        env.setenv("POLARMAP_FROZEN", str(root / "frozen"))
        refused = main(base)
        refusal = err.getvalue()
        suggested = re.search(r"(--split \S+ --folds \d+)", refusal)
        assert refused == 1 and suggested, refusal
        options = suggested[1].split()
        assert main([*base, *options]) == 0
        finals = root / "finals"
        assert main(["finalize", str(root / "runs" / "results"), "--top", "1", "--seeds", "1",
                     "--bootstrap", "50", "--out", str(finals)]) == 0  # fmt: skip
        refit = ["--out", str(root / "refit"), "--refit", "--no-ensemble"]
        assert main(["finalize", str(root / "runs" / "results"), "--top", "1", "--seeds", "1",
                     "--bootstrap", "50", *refit]) == 0  # fmt: skip
    return root, options, refusal, out.getvalue()


def test_the_refusal_suggests_a_cross_validated_split_the_command_takes(first_seed_search):
    _, options, refusal, _ = first_seed_search
    assert "Infarction" in refusal and "4 patients" in refusal
    assert options == ["--split", "75/0/25", "--folds", "3"]


def test_the_suggested_search_cross_validates_every_trial_and_stops_some(first_seed_search):
    root, _, _, printed = first_seed_search
    assert "cross-validated in 3-fold" in printed
    assert "6 trials: 6 to 2 -> 2 to 6* (4 stopped early)" in printed
    results = root / "runs" / "results"
    trials = load_trials(results, "cv")
    assert len(trials) == 6 and set(trials["folds"]) == {3}
    assert (trials["status"] == "stopped").sum() == 4  # Hyperband stopped trials early
    predictions = load_table(results, "predictions", "cv")
    search_row = load_table(results, "searches", "cv").iloc[0]
    assert search_row["split"] == "3-fold (test 25 %)"
    train_patients = 87 - 22  # 1 + 4 + 16 + 1 rounded: 25 % of each class held out
    for _, rows in predictions.groupby("trial_id"):
        assert len(rows) == rows["patient_id"].nunique() == train_patients
        assert set(rows["fold"]) == {0, 1, 2}
    # each trial's row is its kept epoch's, and its predictions are that epoch's
    kept = trials.set_index("trial_id")["best_epoch"]
    assert all(rows["epoch"].iloc[0] == kept[t] for t, rows in predictions.groupby("trial_id"))


def test_finalize_exports_a_fold_ensemble_of_the_winner(first_seed_search):
    root = first_seed_search[0]
    (folder,) = (root / "finals").glob("*/seed-*")
    model, exported = load_model(folder)
    assert exported.members == 3 and len(model.members) == 3
    finals = load_table(root / "runs" / "results", "finals", "cv", refit=False)
    assert finals["members"].tolist() == [3] and finals["cv_patients"].tolist() == [65]
    assert 0 <= finals["cv_balanced_accuracy"].iloc[0] <= 1
    report = (root / "finals" / "report.html").read_text()
    assert "cross-validated (3 fold models)" in report
    # the exported test predictions are the mean of the members', and `predict` and
    # `evaluate` take the exported ensemble
    with (folder / "test-predictions.csv").open(newline="") as handle:
        saved = {r["patient_id"]: r for r in csv.DictReader(handle)}
    assert len(saved) == 22
    from search.finalize.pipeline import FinalizeSettings, held_out_patients, load_search
    from search.tuning.prepare import check_search, prepare_search

    _, _, settings = load_search(FinalizeSettings(results=str(root / "runs" / "results")))
    prepared = prepare_search(settings, check_search(settings))
    patients = held_out_patients(prepared, exported.config.backbone, exported.views)
    members = torch.stack([predict_probabilities(m, patients.x) for m in model.members])
    names = exported.class_names
    written = np.array([[float(saved[p][f"probability_{c}"]) for c in names] for p in patients.ids])
    np.testing.assert_allclose(written, members.mean(0).numpy(), atol=1e-5)

    manifest, out = root / "data" / "manifest.csv", root / "predicted.csv"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["predict", str(folder), str(manifest), "--out", str(out),
                     "--cache", str(root / "cache")]) == 0  # fmt: skip
        assert main(["evaluate", str(folder), str(manifest), "--out", str(root / "eval"),
                     "--bootstrap", "20", "--cache", str(root / "cache")]) == 0  # fmt: skip
    with out.open(newline="") as handle:
        predicted = {r["patient_id"]: r for r in csv.DictReader(handle)}
    assert len(predicted) == 87
    for patient in patients.ids:
        for c in names:
            key = f"probability_{c}"
            assert float(predicted[patient][key]) == pytest.approx(
                float(saved[patient][key]), abs=1e-5
            )


def test_refit_retrains_one_model_for_the_epochs_cross_validation_kept(first_seed_search):
    root = first_seed_search[0]
    (folder,) = (root / "refit").glob("*/seed-*")
    model, exported = load_model(folder)
    assert exported.members == 1 and not hasattr(model, "members")
    trials = load_trials(root / "runs" / "results", "cv").set_index("trial_id")
    winner = trials.loc[exported.provenance["trial_id"]]
    assert exported.config.warmup_epochs == winner["best_warmup_epoch"]
    finetune = winner["best_finetune_epoch"]
    expected = 0 if finetune != finetune else int(finetune) - int(winner["warmup_epochs"])
    assert exported.config.finetune_epochs == expected
    finals = load_table(root / "runs" / "results", "finals", "cv").set_index("members")
    refit, ensemble = finals.loc[1], finals.loc[3]
    assert bool(refit["refit"]) and not bool(ensemble["refit"])
    assert refit["cv_patients"] == 65  # the search's own out-of-fold predictions
