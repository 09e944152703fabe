"""The result tables on S3 (a local moto server): written as whole objects, read back by
the project and by pyarrow alone, rewritten without duplicates, rebuilt from a search's
folder on S3."""

from __future__ import annotations

import json

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from results import leaderboard, load_epochs, load_trials, search_summaries
from results.rows import trial_rows
from results.store import ResultStore
from search.tuning.ingest import ingest_experiment


def located(uri: str, name: str) -> str:
    base, _, query = uri.partition("?")
    return f"{base}/{name}?{query}"


def test_the_tables_round_trip_through_s3(s3_storage, config, make_records):
    results = located(s3_storage, "results")
    store = ResultStore(results)
    store.write_trial(trial_rows("s1", "t1", config, make_records(2)))
    store.write_trial(trial_rows("s1", "t1", config, make_records(3)))  # resumed: rewritten
    store.write_trial(trial_rows("s1", "t2", {**config, "mode": "stress"}, make_records(3, 1)))
    trials = load_trials(results, "s1")
    assert list(trials["trial_id"]) == ["t1", "t2"] and list(trials["epochs_run"]) == [3, 3]
    assert len(load_epochs(results, "s1", trial_id="t1")) == 3
    assert list(leaderboard(results)["mode"]) == ["dual", "stress"]
    assert search_summaries(results)[0].trials["completed"] == 2
    # no project code: pyarrow's own S3 file system over the same objects
    fs, root = pafs.FileSystem.from_uri(results)
    listed = fs.get_file_info(pafs.FileSelector(f"{root}/trials", recursive=True))
    names = sorted(i.base_name for i in listed if i.type == pafs.FileType.File)
    assert names == ["trial-t1.parquet", "trial-t2.parquet"]  # one object per trial, no temps
    table = ds.dataset(f"{root}/trials", filesystem=fs, partitioning="hive").to_table()
    assert sorted(table["trial_id"].to_pylist()) == ["t1", "t2"]


def test_a_search_folder_on_s3_is_ingested_beside_it(s3_storage, config, make_records):
    fs, root = pafs.FileSystem.from_uri(s3_storage)
    folder = f"{root}/s9/polarmap_trainable_t5_00000_a=3.5"
    fs.create_dir(folder)
    with fs.open_output_stream(f"{folder}/params.json") as out:
        out.write(json.dumps(config).encode())
    with fs.open_output_stream(f"{folder}/result.json") as out:
        lines = [json.dumps({**r, "trial_id": "t5"}) for r in make_records(3)]
        out.write(("\n".join(lines) + "\n").encode())
    assert ingest_experiment(located(s3_storage, "s9")) == 1
    trials = load_trials(located(s3_storage, "results"), "s9")
    assert list(trials["trial_id"]) == ["t5"] and trials.loc[0, "status"] == "completed"


def test_a_damaged_object_is_named_by_its_uri_with_the_repair(s3_storage, config, make_records):
    from search.errors import DamagedTable

    results = located(s3_storage, "results")
    ResultStore(results).write_trial(trial_rows("s1", "t1", config, make_records(3)))
    fs, root = pafs.FileSystem.from_uri(results)
    with fs.open_output_stream(f"{root}/trials/search=s1/trial-t1.parquet") as out:
        out.write(b"PAR1, cut off by a failed upload")
    with pytest.raises(DamagedTable) as caught:
        load_trials(results, "s1")
    assert caught.value.files == ("s3://runs/searches/results/trials/search=s1/trial-t1.parquet",)
    assert f"polarmap results ingest {located(s3_storage, 's1')}" in str(caught.value)
