"""Typed records: the statuses are the strings they always were, the store refuses a key
its table has no column for (and a status none of the table's) before it writes anything,
and the epoch-key grammar the trainable writes is the one the result tables read."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest

from results.records import (
    EpochRow,
    FinalRow,
    SearchStatus,
    TrialRow,
    TrialStatus,
    UnknownColumn,
    UnknownStatus,
    check_records,
)
from results.rows import trial_rows
from results.schema import TABLES
from results.store import ResultStore
from trainables.epoch_keys import (
    class_key,
    compute_path_key,
    fold_key,
    frozen_key,
    oof_key,
    parse_class_key,
    parse_compute_path_key,
    parse_fold_key,
    parse_frozen_key,
    parse_oof_key,
    parse_sd_key,
    parse_val_key,
    sd_key,
    val_key,
)
from trainables.metrics import PER_CLASS_METRICS

# -- statuses ----------------------------------------------------------------------------


def test_the_statuses_are_the_strings_written_before():
    assert [s.value for s in TrialStatus] == ["completed", "stopped", "errored", "interrupted"]
    assert [s.value for s in SearchStatus] == [
        "running", "completed", "stopped by the time budget", "interrupted", "ingested",
    ]  # fmt: skip
    assert TrialStatus.COMPLETED == "completed" and f"{SearchStatus.INTERRUPTED}" == "interrupted"
    assert str(SearchStatus.STOPPED_BY_TIME_BUDGET) == "stopped by the time budget"
    assert {"errored": 1}[TrialStatus.ERRORED] == 1  # hashes as its string


def test_a_status_is_written_to_parquet_as_its_plain_string(tmp_path, config, make_records):
    store = ResultStore(tmp_path)
    store.write_search({"search": "s", "status": SearchStatus.STOPPED_BY_TIME_BUDGET})
    store.write_trial(trial_rows("s", "t1", config, make_records(2)))
    searches = pq.read_table(tmp_path / "searches" / "search=s" / "search.parquet")
    assert searches["status"].to_pylist() == ["stopped by the time budget"]
    trials = store.table("trials", search="s")["status"].to_pylist()
    assert trials == ["stopped"] and type(trials[0]) is str


# -- what the store refuses --------------------------------------------------------------


def test_a_misspelt_key_is_refused_before_anything_is_written(tmp_path, config, make_records):
    store = ResultStore(tmp_path)
    rows = trial_rows("s", "t1", config, make_records(3))
    rows.epochs[-1]["val_acuracy"] = 0.9  # epochs: written after the trials table
    with pytest.raises(UnknownColumn) as refused:
        store.write_trial(rows)
    message = str(refused.value)
    assert message.startswith("table 'epochs' has no column 'val_acuracy'; its columns are ")
    assert ", ".join(name for name, _ in TABLES["epochs"]) in message
    assert refused.value.table == "epochs" and refused.value.unknown == ["val_acuracy"]
    assert isinstance(refused.value, ValueError)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # not even the trials file


def test_every_unknown_key_is_named(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises(UnknownColumn, match=r"has no column 'ended_at', 'stauts'; its columns"):
        store.write_search({"search": "s", "stauts": "running", "ended_at": None})
    assert not tmp_path.exists() or not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_an_unknown_status_is_refused(tmp_path, config, make_records):
    store = ResultStore(tmp_path)
    with pytest.raises(UnknownStatus) as refused:
        store.write_search({"search": "s", "status": "finished"})
    assert str(refused.value) == (
        "table 'searches': status 'finished' is not one of 'running', 'completed', "
        "'stopped by the time budget', 'interrupted', 'ingested'"
    )
    rows = trial_rows("s", "t1", config, make_records(3))
    rows.trial["status"] = "stopped by the time budget"  # a search's, not a trial's
    with pytest.raises(UnknownStatus, match="table 'trials': status 'stopped by the time"):
        store.write_trial(rows)
    assert not tmp_path.exists() or not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_missing_key_or_status_is_still_a_null(tmp_path):
    check_records("searches", [{"search": "s"}, {"search": "s", "status": None}])
    check_records("trials", [{"trial_id": "t", "status": "interrupted"}])
    ResultStore(tmp_path).write_search({"search": "s", "space": "demo"})
    assert ResultStore(tmp_path).table("searches")["status"].to_pylist() == [None]


# -- typed rows ----------------------------------------------------------------------------


def test_typed_rows_give_back_the_rows_of_a_trial(config, make_records):
    rows = trial_rows("s", "t1", config, make_records(3))
    assert TrialRow.from_row(rows.trial).to_row() == rows.trial
    assert list(rows.trial) == [name for name, _ in TABLES["trials"]]  # every column
    for epoch in rows.epochs:
        assert EpochRow.from_row(epoch).to_row() == epoch
    final = FinalRow.from_row({"search": "s", "trial_id": "t1", "seed": 0, "refit": False})
    assert final.seed == 0 and final.test_accuracy is None
    assert list(final.to_row()) == [name for name, _ in TABLES["finals"]]
    with pytest.raises(UnknownColumn, match="table 'trials' has no column 'best_val_acc'"):
        TrialRow.from_row({"best_val_acc": 0.5})
    with pytest.raises(UnknownStatus):
        TrialRow.from_row({"status": "done"})


# -- the epoch-key grammar -----------------------------------------------------------------

# every kind of key: how it is built, how it is parsed, the parts, the key
KINDS = {
    "val": (val_key, parse_val_key, ("balanced_accuracy",), "val_balanced_accuracy"),
    "loss": (val_key, parse_val_key, ("loss",), "val_loss"),
    "sd": (sd_key, parse_sd_key, ("roc_auc",), "val_roc_auc_sd"),
    "oof": (oof_key, parse_oof_key, ("f1",), "oof_f1"),
    "class": (class_key, parse_class_key, ("sensitivity", "Non-CAD (rest)"),
              "val_sensitivity/Non-CAD (rest)"),
    "fold": (fold_key, parse_fold_key, (2, 11, "val_loss"), "fold_2_11/val_loss"),
    "compute path": (compute_path_key, parse_compute_path_key, ("finetune",),
                     "compute_path_finetune"),
    "frozen": (frozen_key, parse_frozen_key, ("computed",), "frozen_computed"),
}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_key_round_trips(kind):
    build, parse, parts, key = KINDS[kind]
    assert build(*parts) == key
    parsed = parse(key)
    assert (parsed if isinstance(parsed, tuple) else (parsed,)) == parts
    others = {p for _, p, _, _ in KINDS.values()} - {parse}
    assert all(other(key) is None for other in others), "a key is of one kind only"


def test_the_grammar_round_trips_over_every_metric_class_and_fold():
    for metric in PER_CLASS_METRICS:
        for cls in ("Normal", "CAD", "a/b", "", "Ischämie 2"):
            assert parse_class_key(class_key(metric, cls)) == (metric, cls)
        assert parse_val_key(val_key(metric)) == metric
        assert parse_sd_key(sd_key(metric)) == metric
        assert parse_oof_key(oof_key(metric)) == metric
        for repeat, fold in ((0, 0), (3, 9), (10, 123)):
            name = val_key(metric)
            assert parse_fold_key(fold_key(repeat, fold, name)) == (repeat, fold, name)


# what the result tables parsed before the grammar had one home (results/rows.py)
_OLD_FOLD_KEY = re.compile(r"^fold_(\d+)_(\d+)/(val_[a-z0-9_]+)$")


def _old_fold(key):
    match = _OLD_FOLD_KEY.match(key)
    return (int(match[1]), int(match[2]), match[3]) if match else None


def _old_class(key):
    found = [(m, key.split("/", 1)[1]) for m in PER_CLASS_METRICS if key.startswith(f"val_{m}/")]
    return found[0] if found else None


FOLD_KEYS = {
    "fold_0_1/val_loss": (0, 1, "val_loss"),
    "fold_12_3/val_balanced_accuracy": (12, 3, "val_balanced_accuracy"),
    "fold_0_0/val_f1_sd": (0, 0, "val_f1_sd"),
    "fold_007_01/val_roc_auc": (7, 1, "val_roc_auc"),
    "fold_0/val_f1": None,
    "fold_a_1/val_f1": None,
    "fold_0_1/train_loss": None,
    "fold_0_1/val_F1": None,
    "fold_0_1/val_": None,
    "fold_0_1/val_f1/Normal": None,
    "xfold_0_1/val_f1": None,
    "val_f1": None,
}

CLASS_KEYS = {
    "val_sensitivity/Normal": ("sensitivity", "Normal"),
    "val_roc_auc/CAD": ("roc_auc", "CAD"),
    "val_specificity/a/b": ("specificity", "a/b"),
    "val_f1/": ("f1", ""),
    "val_precision/Non CAD": ("precision", "Non CAD"),
    "val_accuracy/Normal": None,  # not a per-class metric
    "val_sensitivity_sd/Normal": None,
    "val_sensitivity": None,
    "val_loss/Normal": None,
    "oof_f1/Normal": None,
    "fold_0_1/val_f1": None,
}


@pytest.mark.parametrize(("key", "parts"), FOLD_KEYS.items())
def test_fold_keys_parse_as_the_old_regex_did(key, parts):
    assert parse_fold_key(key) == parts == _old_fold(key)


@pytest.mark.parametrize(("key", "parts"), CLASS_KEYS.items())
def test_class_keys_parse_as_the_old_prefixes_did(key, parts):
    assert parse_class_key(key) == parts == _old_class(key)


def test_keys_the_trainable_builds_land_in_the_tables(config, make_records):
    records = make_records(3)
    for record in records:
        record.update(
            {
                class_key("f1", "Ischemia"): 0.25,
                sd_key("accuracy"): 0.01,
                oof_key("roc_auc"): 0.7,
                compute_path_key("warmup"): "full",
                frozen_key("read"): 4,
                fold_key(1, 0, val_key("loss")): 0.9,
                fold_key(1, 0, val_key("accuracy")): 0.8,
            }
        )
    rows = trial_rows("s", "t1", config, records)
    per_class = {(r["class"], r["metric"], r["value"]) for r in rows.class_metrics}
    assert ("Ischemia", "f1", 0.25) in per_class
    assert rows.trial["compute_path_warmup"] == "full" and rows.trial["frozen_read"] == 4
    assert rows.trial["best_oof_roc_auc"] == 0.7 and rows.epochs[0]["val_accuracy_sd"] == 0.01
    folds = [(r["repeat"], r["fold"], r["val_loss"], r["val_accuracy"]) for r in rows.fold_epochs]
    assert folds == [(1, 0, 0.9, 0.8)] * 3
