"""Reading the tables: filters applied as files are read, learning curves of one trial,
and the files a real search wrote, typed as documented, read by pandas, pyarrow, DuckDB
and polars with no project code."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from results import learning_curves, load_class_metrics, load_epochs, load_trials
from results.schema import SCHEMA_VERSION, TABLES, schema


def test_keyword_filters_take_a_value_a_list_or_none(example_store):
    assert list(load_trials(example_store)["trial_id"]) == ["t1", "t2", "t3", "t9"]
    assert list(load_trials(example_store, "s1", mode="dual")["trial_id"]) == ["t1", "t3"]
    kept = load_trials(example_store, status=["completed", "stopped"])
    assert list(kept["trial_id"]) == ["t1", "t2", "t9"]
    assert list(load_trials(example_store, error=None)["trial_id"]) == ["t1", "t2", "t9"]
    assert load_trials(example_store, backbone="densenet121").empty
    epochs = load_epochs(example_store, "s1", trial_id="t1")
    assert list(epochs["epoch"]) == [1, 2, 3] and list(epochs["search"].unique()) == ["s1"]
    classes = load_class_metrics(example_store, "s2", metric="sensitivity", epoch=3)
    assert dict(zip(classes["class"], classes["value"], strict=True)) == {
        "Ischemia": 0.3, "Normal": 0.7,
    }  # fmt: skip


def test_an_unknown_table_or_column_is_named_with_the_choices(example_store):
    with pytest.raises(ValueError, match=r"table 'trials' has no column 'lr'.*warmup_lr"):
        load_trials(example_store, lr=0.001)
    from results import load_table

    with pytest.raises(ValueError, match="no table 'final'; the tables are searches"):
        load_table(example_store, "final")


def test_learning_curves_are_one_trials_epochs_in_order(example_store):
    curves = learning_curves(example_store, "t1")
    assert list(curves["stage"]) == ["warmup", "warmup", "finetune"]
    assert list(curves["train_accuracy"]) == pytest.approx([0.4, 0.5, 0.6])
    with pytest.raises(LookupError, match="no epochs of trial 'nope' in search 's1'"):
        learning_curves(example_store, "nope", "s1")


def test_a_trial_id_in_two_searches_must_be_told_apart(example_store, config, make_records):
    from results.rows import trial_rows
    from results.store import ResultStore

    ResultStore(example_store).write_trial(trial_rows("s2", "t1", config, make_records(2)))
    with pytest.raises(LookupError, match="trial 't1' is in searches s1, s2; name one"):
        learning_curves(example_store, "t1")
    assert len(learning_curves(example_store, "t1", "s2")) == 2


@pytest.mark.slow
def test_a_real_searchs_files_are_typed_as_the_schema_says(finished_search):
    finalize_tables = ("comparisons", "ensembles", "outer_predictions", "decision_curves")
    search_tables = [t for t in TABLES if not t.startswith("final") and t not in finalize_tables]
    for table in search_tables:  # the others are written by `polarmap finalize`
        files = sorted(finished_search.results.glob(f"{table}/search=my-search/*.parquet"))
        assert files, table
        expected = schema(table)
        for file in files:
            stored = pq.read_schema(file)
            assert stored.metadata[b"polarmap.schema_version"] == SCHEMA_VERSION.encode()
            assert stored.metadata[b"polarmap.table"] == table.encode()
            assert stored.names == [n for n in expected.names if n != "search"]  # in paths
            for field in stored:
                assert field.type == expected.field(field.name).type, (table, field.name)
    trials = load_trials(finished_search.results, "my-search")
    for column in ("width", "a", "effective_unfreeze", "best_epoch", "wall_seconds", "gpus"):
        assert trials[column].notna().all(), column
    assert set(trials["device"]) == {"CPU"} and set(trials["gpus"]) == {0.0}
    assert (trials["ended"] > trials["started"]).all()
    assert trials["node_id"].str.fullmatch("[0-9a-f]{56}").all()  # Ray's node ids
    assert set(trials["failures"]) == {0}


@pytest.mark.slow
def test_pandas_pyarrow_duckdb_and_polars_read_the_same_rows(finished_search):
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.dataset as ds

    folder = finished_search.results / "epochs"
    by_pandas = pd.read_parquet(folder)
    by_arrow = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    by_duckdb = duckdb.sql(
        f"SELECT * FROM read_parquet('{folder}/*/*.parquet', hive_partitioning = true)"
    ).df()
    by_polars = pl.read_parquet(f"{folder}/*/*.parquet", hive_partitioning=True)
    keys = ["trial_id", "epoch"]
    reference = by_pandas.sort_values(keys)[[*keys, "val_loss"]].reset_index(drop=True)
    for frame in (
        by_arrow.to_pandas(),
        by_duckdb,
        by_polars.to_pandas(),
        load_epochs(finished_search.results),
    ):
        assert set(frame["search"].astype(str)) == {"my-search"}
        mine = frame.sort_values(keys)[[*keys, "val_loss"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, reference, check_dtype=False)
    assert len(reference) == by_polars.height == by_arrow.num_rows > 0


def test_every_table_reads_in_a_stable_order():
    from results.read import _ORDER

    for table, columns in _ORDER.items():
        names = [name for name, _ in TABLES[table]]
        assert set(columns) <= set(names), table
    assert set(_ORDER) == set(TABLES)
