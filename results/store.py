"""The result tables on disk or object storage: Parquet files partitioned Hive-style by
search name (`trials/search=NAME/...`), one file per trial and table, so a finished trial
lands at once, a resumed search or a re-ingest rewrites the same file (one row per trial,
never two), and a reader never sees half a file (`search.files.write_file`). A record
with a key its table has no column for, or a status none of the table's, is refused
before anything is written (`results.records`), never written as a null."""

from __future__ import annotations

import os
import re
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from results.records import check_records
from results.rows import TrialRows
from results.schema import TABLES, schema
from search.files import open_location, write_file

__all__ = ["ResultStore", "check_search_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_search_name(name: str) -> str:
    """A search name fit for a folder name on every file system and S3.

    Raises:
        ValueError: it is not letters, digits, '.', '_' and '-'.
    """
    if not _NAME.match(name):
        raise ValueError(
            f"search name {name!r}: use letters, digits, '.', '_' and '-' (it names folders)"
        )
    return name


class ResultStore:
    """The tables under `root`: a folder, or a URI such as s3://bucket/results."""

    def __init__(self, root: str | os.PathLike[str]):
        self.fs, self.root = open_location(root)

    # -- writing ----------------------------------------------------------------------
    def write_trial(self, rows: TrialRows) -> None:
        """The trial's row, epoch rows, per-class rows, fold rows and held-out predictions,
        each table's file replaced."""
        search, trial_id = rows.trial["search"], rows.trial["trial_id"]
        self._write_tables(search, f"trial-{trial_id}.parquet", rows.tables())

    def write_finals(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        """A finalized model's rows (`finals`, `final_class_metrics`, `final_subgroups`), one
        file per trial and seed (and refit or not), replaced when finalize runs again."""
        (final,) = rows["finals"]
        refit = "-refit" if final.get("refit") else ""  # beside the trial's fold ensemble
        name = f"trial-{final['trial_id']}-seed-{final['seed']}{refit}.parquet"
        self._write_tables(final["search"], name, rows)

    def write_comparisons(self, search: str, records: list[dict[str, Any]]) -> None:
        """A finalize run's paired comparisons, one file per search, replaced when finalize
        runs again."""
        self._write_tables(search, "comparisons.parquet", {"comparisons": records})

    def write_outer_predictions(self, search: str, records: list[dict[str, Any]]) -> None:
        """A nested run's pooled outer-fold predictions, one file, replaced when finalize
        runs again."""
        self._write_tables(search, "outer-predictions.parquet", {"outer_predictions": records})

    def write_ensembles(self, search: str, records: list[dict[str, Any]]) -> None:
        """A finalize run's greedy ensemble, one row per member, replaced when it runs
        again (and emptied when it makes none)."""
        self._write_tables(search, "ensembles.parquet", {"ensembles": records})

    def write_search(self, row: dict[str, Any]) -> None:
        """The search's row, its file replaced."""
        self._write_tables(row["search"], "search.parquet", {"searches": [row]})

    def _write_tables(self, search: str, name: str, tables: dict[str, list[dict]]) -> None:
        """Each table's records into its file `name` of the search's folder; every record
        checked before any file is written (`results.records.check_records`), so a misspelt
        key or an unknown status is refused rather than lost as a null."""
        check_search_name(search)
        for table, records in tables.items():
            check_records(table, records)
        for table, records in tables.items():
            self._write(table, search, name, records)

    def _write(self, table: str, search: str, name: str, records: list[dict]) -> None:
        full = schema(table)
        stored = pa.schema([f for f in full if f.name != "search"], metadata=full.metadata)
        data = pa.Table.from_pylist(
            [{k: v for k, v in r.items() if k != "search"} for r in records], schema=stored
        )
        buffer = pa.BufferOutputStream()
        pq.write_table(data, buffer)
        folder = f"{self.root}/{table}/search={check_search_name(search)}"
        write_file(self.fs, f"{folder}/{name}", buffer.getvalue().to_pybytes())

    # -- reading ----------------------------------------------------------------------
    def table(self, name: str, search: str | None = None, filter=None) -> pa.Table:
        """Table `name` (searches, trials, epochs, class_metrics), for one search or all."""
        if name not in TABLES:
            raise ValueError(f"no table {name!r}; the tables are {', '.join(TABLES)}")
        folder = f"{self.root}/{name}"
        if self.fs.get_file_info(folder).type == pafs.FileType.NotFound:
            return schema(name).empty_table()
        dataset = ds.dataset(
            folder,
            format="parquet",
            filesystem=self.fs,
            partitioning=ds.partitioning(pa.schema([("search", pa.string())]), flavor="hive"),
            schema=schema(name),
            exclude_invalid_files=True,
        )
        condition = ds.field("search") == search if search is not None else None
        if filter is not None:
            condition = filter if condition is None else condition & filter
        return dataset.to_table(filter=condition)
