"""A real search as the trackers show it (the session's `finished_search`, run with
`--mlflow`): MLflow's run tree, params, per-epoch metrics and tags read back with
MlflowClient; every trial's TensorBoard curves read with TensorBoard's own reader; each
pair's Optuna study in the journal. Each against the result tables, the record of truth."""

from __future__ import annotations

import logging
import time

import pytest

from results import load_table, load_trials
from results.rows import TrialRows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tracked(finished_search):
    """The search's MLflow runs by key, and its tables."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(finished_search.mlflow)
    experiment = client.get_experiment_by_name("polarmap-search")
    runs = client.search_runs([experiment.experiment_id], "tags.`polarmap.search` = 'my-search'")
    trials = load_trials(finished_search.results, "my-search").set_index("trial_id")
    epochs = load_table(finished_search.results, "epochs", search="my-search")
    return client, {r.data.tags["polarmap.key"]: r for r in runs}, trials, epochs


def test_mlflow_holds_the_search_its_pairs_and_every_trial_nested(tracked):
    _, runs, trials, _ = tracked
    search = runs["search"]
    assert search.info.run_name == "my-search" and search.info.status == "FINISHED"
    assert search.data.params["space"] == "tiny" and search.data.params["samples_per_pair"] == "3"
    assert search.data.tags["polarmap.status"] == "completed"
    assert search.data.tags["polarmap.data_fingerprint"]  # provenance
    parent = {k: r.data.tags.get("mlflow.parentRunId") for k, r in runs.items()}
    pairs = {k for k in runs if k.startswith("pair:")}
    assert pairs == {"pair:test_resnet/stress", "pair:test_resnet/dual"}
    assert all(parent[p] == search.info.run_id for p in pairs)
    trial_keys = {k for k in runs if k.startswith("trial:")}
    assert trial_keys == {f"trial:{t}" for t in trials.index}  # each once, none more
    for key in trial_keys:
        run, row = runs[key], trials.loc[key.removeprefix("trial:")]
        pair = runs[f"pair:{row['backbone']}/{row['mode']}"]
        assert parent[key] == pair.info.run_id
        assert run.data.params["width"] == str(int(row["width"]))
        assert float(run.data.params["a"]) == pytest.approx(row["a"])
        assert run.data.tags["polarmap.status"] == row["status"]
        assert run.data.tags["polarmap.compute_path_warmup"] == row["compute_path_warmup"]
        stopped = row["status"] == "stopped"
        assert run.data.tags.get("polarmap.stop_rung") == (
            str(row["epochs_run"]) if stopped else None
        )
        assert run.info.status == "FINISHED"


def test_mlflow_has_every_epochs_fold_mean_and_sd_once_as_the_tables_do(tracked):
    client, runs, _, epochs = tracked
    for trial_id, rows in epochs.groupby("trial_id"):
        run_id = runs[f"trial:{trial_id}"].info.run_id
        for metric in ("val_roc_auc", "val_roc_auc_sd", "train_loss", "best_selection"):
            history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, metric))
            pairs = zip(rows["epoch"], rows[metric], strict=True)
            expected = sorted((e, v) for e, v in pairs if v == v)
            assert [s for s, _ in history] == [int(e) for e, _ in expected]  # no gap, no twin
            assert [v for _, v in history] == pytest.approx([v for _, v in expected])


def test_tensorboard_reads_every_trials_curves(finished_search, tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, _, trials, epochs = tracked
    assert not list(finished_search.experiment.glob("*/events.out.tfevents*"))  # none of Ray's
    for trial_id, rows in epochs.groupby("trial_id"):
        row = trials.loc[trial_id]
        folder = finished_search.experiment / "tensorboard" / f"{row['backbone']}-{row['mode']}"
        curves = EventAccumulator(str(folder / trial_id))
        curves.Reload()
        for stage, in_stage in rows.groupby("stage"):
            mean = [(e.step, e.value) for e in curves.Scalars(f"{stage}/val_roc_auc")]
            assert [s for s, _ in mean] == [int(e) for e in in_stage["epoch"]]
            assert [v for _, v in mean] == pytest.approx(list(in_stage["val_roc_auc"]), rel=1e-6)
            assert [e.step for e in curves.Scalars(f"{stage}/train_loss")] == [s for s, _ in mean]
        kept = [e.step for e in curves.Scalars("all/best_selection")]
        assert kept == sorted(int(e) for e in rows["epoch"])


def test_each_pairs_study_is_in_the_journal(finished_search, tracked):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    _, _, trials, _ = tracked
    storage = JournalStorage(JournalFileBackend(str(finished_search.experiment / "optuna.journal")))
    for (backbone, mode), rows in trials.groupby(["backbone", "mode"]):
        study = optuna.load_study(study_name=f"{backbone}/{mode}", storage=storage)
        by_id = {t.user_attrs["trial_id"]: t for t in study.trials}
        assert set(by_id) == set(rows.index)
        for trial_id, row in rows.iterrows():
            kept = by_id[trial_id]
            assert kept.params["width"] == row["width"]
            if row["status"] == "completed":
                assert kept.value == pytest.approx(row["best_selection"])
            else:
                assert kept.state == optuna.trial.TrialState.PRUNED


def test_an_unreachable_server_is_one_warning_and_nothing_waits(caplog):
    from search.tracking import Trackers
    from search.tracking.mlflow_runs import MlflowTracker

    tracker = MlflowTracker("http://127.0.0.1:9", {"search": "s", "space": "tiny"})
    trackers = Trackers([tracker])
    config = {"backbone": "test_resnet", "mode": "stress", "width": 32}
    report = {"epoch": 1, "stage": "warmup", "val_roc_auc": 0.5}
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        for epoch in range(1, 20):
            trackers.trial_epoch("t1", config, {**report, "epoch": epoch})
        assert time.monotonic() - started < 1  # the driver never waits on MLflow
        trackers.trial_ended("t1", config, TrialRows({"status": "completed"}, [], []))
        trackers.search_ended("completed")
        trackers.close()
    warnings = [r for r in caplog.records if "MLflow" in r.getMessage()]
    assert len(warnings) == 1 and "search goes on" in warnings[0].getMessage()


def test_a_search_of_the_tables_is_shown_in_mlflow_afterwards_as_it_was_live(
    finished_search, tracked, tmp_path, capsys
):
    from mlflow.tracking import MlflowClient

    from search.cli import main

    live_client, live, _, _ = tracked
    store = tmp_path / "later"
    args = ["results", "mlflow", str(finished_search.results), "--mlflow", str(store)]
    assert main(args) == 0
    assert main(args) == 0  # again: nothing twice
    assert "search my-search: 6 trials in MLflow" in capsys.readouterr().out
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("polarmap-search").experiment_id
    found = client.search_runs([experiment])
    later = {r.data.tags["polarmap.key"]: r for r in found}
    assert len(later) == len(found)  # one run per key
    assert set(later) == {k for k in live if not k.startswith("final:")}
    for key, run in later.items():
        shown = live[key]
        assert run.data.params == shown.data.params
        assert run.info.status == shown.info.status == "FINISHED"
        assert run.data.tags.get("polarmap.status") == shown.data.tags.get("polarmap.status")
        if key.startswith("trial:"):
            for metric in ("val_roc_auc", "train_loss"):
                steps = sorted(
                    (m.step, m.value) for m in client.get_metric_history(run.info.run_id, metric)
                )
                were = sorted(
                    (m.step, m.value)
                    for m in live_client.get_metric_history(shown.info.run_id, metric)
                )
                assert [s for s, _ in steps] == [s for s, _ in were]
                assert [v for _, v in steps] == pytest.approx([v for _, v in were])
