"""The result tables: typed rows from a trial's reports, written per trial, read back by
any Parquet reader; rewriting a trial never duplicates it."""

from __future__ import annotations

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from results.rows import trial_rows
from results.schema import SCHEMA_VERSION, schema
from results.store import ResultStore, check_search_name


def test_a_trials_rows_carry_its_figures(config, make_records):
    rows = trial_rows("s1", "t1", config, make_records(3))
    trial = rows.trial
    assert trial["status"] == "completed" and trial["epochs_run"] == 3
    assert trial["best_epoch"] == 2 and trial["best_val_balanced_accuracy"] == pytest.approx(0.6)
    assert trial["warmup_lr"] == pytest.approx(10**-3.5)
    assert trial["finetune_lr"] == pytest.approx(10**-5.5)
    assert trial["compute_path_finetune"] == "cached-prefix:layer4.1"
    assert [r["epoch"] for r in rows.epochs] == [1, 2, 3]
    assert {(r["class"], r["metric"]) for r in rows.class_metrics} == {
        ("Normal", "sensitivity"), ("Ischemia", "sensitivity"),
    }  # fmt: skip
    assert trial_rows("s1", "t2", config, make_records(2)).trial["status"] == "stopped"
    failed = trial_rows("s1", "t3", config, make_records(1), error="RuntimeError: boom")
    assert failed.trial["status"] == "errored" and failed.trial["error"].endswith("boom")


def test_an_epoch_reported_twice_counts_once(config, make_records):
    twice = make_records(3)[:2] + make_records(3)[1:]  # resumed from the checkpoint of epoch 1
    assert [r["epoch"] for r in trial_rows("s", "t", config, twice).epochs] == [1, 2, 3]


def test_written_tables_read_back_typed_and_partitioned(tmp_path, config, make_records):
    store = ResultStore(tmp_path)
    store.write_trial(trial_rows("s1", "t1", config, make_records(3)))
    store.write_trial(trial_rows("s2", "t9", config, make_records(2)))
    trials = store.table("trials")
    assert trials.num_rows == 2 and set(trials["search"].to_pylist()) == {"s1", "s2"}
    assert trials.schema.field("width").type == schema("trials").field("width").type
    assert store.table("epochs", search="s1").num_rows == 3
    # any Parquet reader, no project code: pandas, and pyarrow's dataset with Hive paths
    frame = ds.dataset(tmp_path / "trials", partitioning="hive").to_table().to_pandas()
    assert sorted(frame["trial_id"]) == ["t1", "t9"]
    file = next((tmp_path / "trials" / "search=s1").glob("*.parquet"))
    metadata = pq.read_schema(file).metadata
    assert metadata[b"polarmap.schema_version"] == SCHEMA_VERSION.encode()


def test_rewriting_a_trial_replaces_its_rows(tmp_path, config, make_records):
    store = ResultStore(tmp_path)
    store.write_trial(trial_rows("s1", "t1", config, make_records(2)))
    store.write_trial(trial_rows("s1", "t1", config, make_records(3)))  # resumed, re-ingested
    trials = store.table("trials")
    assert trials.num_rows == 1 and trials["epochs_run"].to_pylist() == [3]
    assert store.table("epochs").num_rows == 3
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_empty_store_reads_as_empty_tables(tmp_path):
    assert ResultStore(tmp_path / "none").table("trials").num_rows == 0


def test_search_names_must_be_fit_for_folders():
    assert check_search_name("demo-2026.11_21") == "demo-2026.11_21"
    for bad in ("", "../x", "a b", "s=1", "a/b"):
        with pytest.raises(ValueError, match="letters, digits"):
            check_search_name(bad)


def test_a_cross_validated_trial_gives_fold_rows_and_its_kept_predictions(config, make_records):
    import json

    records = make_records(3, best=2)
    for record in records:
        record.update(folds=2, repeats=1, val_balanced_accuracy_sd=0.05, oof_roc_auc=0.7)
        for fold in (0, 1):
            record[f"fold_0_{fold}/val_loss"] = 1.0 + fold
            record[f"fold_0_{fold}/val_f1"] = 0.5 + fold / 10
    for epoch in (1, 2):  # the trial kept epoch 1, then epoch 2
        records[epoch - 1]["held_out_predictions"] = json.dumps({
            "epoch": epoch, "classes": ["Normal", "CAD"], "patient": ["p1", "p2"],
            "repeat": [0, 0], "fold": [1, 0], "label": [1, 0], "p": [[0.4, 0.6], [0.9, 0.1]],
        })  # fmt: skip
    rows = trial_rows("s", "t1", config, records)
    assert rows.trial["folds"] == 2 and rows.trial["best_val_balanced_accuracy_sd"] == 0.05
    assert rows.trial["best_oof_roc_auc"] == 0.7
    assert [(r["epoch"], r["fold"], r["val_loss"], r["val_f1"]) for r in rows.fold_epochs] == [
        (e, f, 1.0 + f, 0.5 + f / 10) for e in (1, 2, 3) for f in (0, 1)
    ]
    kept = [(r["epoch"], r["patient_id"], r["label"], r["predicted"]) for r in rows.predictions]
    assert kept == [(2, "p1", "CAD", "CAD"), (2, "p2", "Normal", "Normal")]
