"""The result tables: typed rows from a trial's reports, written per trial, read back by
any Parquet reader; rewriting a trial never duplicates it."""

from __future__ import annotations

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from results.rows import trial_rows
from results.schema import SCHEMA_VERSION, schema
from results.store import ResultStore, check_search_name

CONFIG = {
    "backbone": "resnet18", "mode": "dual", "width": 64, "depth": 1, "dropout": 0.2, "a": 3.5,
    "unfreeze": 3, "warmup_epochs": 2, "finetune_epochs": 1, "batch_size": 32,
    "augment": "none", "seed": 0, "threads": 2,
}  # fmt: skip


def records(epochs: int, best: int = 2) -> list[dict]:
    return [
        {
            "epoch": e, "stage": "warmup" if e <= 2 else "finetune",
            "stage_epoch": e if e <= 2 else e - 2, "train_loss": 1.0 / e, "val_loss": 1.1 / e,
            "val_accuracy": 0.5 + e / 10, "val_balanced_accuracy": 0.4 + e / 10,
            "val_roc_auc": 0.6, "val_sensitivity/Normal": 0.7, "val_sensitivity/Ischemia": 0.3,
            "best_selection": 0.4 + min(e, best) / 10, "best_epoch": min(e, best),
            "selection_metric": "balanced_accuracy", "effective_unfreeze": 3,
            "requested_unfreeze": 3, "trainable_share": 0.21, "best_warmup_epoch": min(e, 2),
            "best_finetune_epoch": 0, "compute_path_warmup": "pooled-features",
            "compute_path_finetune": "cached-prefix:layer4.1", "device": "CPU",
            "time_total_s": 2.0 * e, "time_this_iter_s": 2.0, "timestamp": 1_800_000_000 + 2 * e,
            "hostname": "node-1", "epoch_seconds": 1.5,
        }
        for e in range(1, epochs + 1)
    ]  # fmt: skip


def test_a_trials_rows_carry_its_figures():
    rows = trial_rows("s1", "t1", CONFIG, records(3))
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
    assert trial_rows("s1", "t2", CONFIG, records(2)).trial["status"] == "stopped"
    failed = trial_rows("s1", "t3", CONFIG, records(1), error="RuntimeError: boom")
    assert failed.trial["status"] == "errored" and failed.trial["error"].endswith("boom")


def test_an_epoch_reported_twice_counts_once():
    twice = records(3)[:2] + records(3)[1:]  # resumed from the checkpoint of epoch 1
    assert [r["epoch"] for r in trial_rows("s", "t", CONFIG, twice).epochs] == [1, 2, 3]


def test_written_tables_read_back_typed_and_partitioned(tmp_path):
    store = ResultStore(tmp_path)
    store.write_trial(trial_rows("s1", "t1", CONFIG, records(3)))
    store.write_trial(trial_rows("s2", "t9", CONFIG, records(2)))
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


def test_rewriting_a_trial_replaces_its_rows(tmp_path):
    store = ResultStore(tmp_path)
    store.write_trial(trial_rows("s1", "t1", CONFIG, records(2)))
    store.write_trial(trial_rows("s1", "t1", CONFIG, records(3)))  # resumed, re-ingested
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
