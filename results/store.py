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
from search.errors import DamagedTable
from search.files import join_location, open_location, parent_location, write_file

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
        # as a user names it: a URI as given, a folder made absolute
        self.location = str(root) if "://" in str(root) else self.root

    # -- writing ----------------------------------------------------------------------
    def write_trial(self, rows: TrialRows) -> None:
        """The trial's row, epoch rows, per-class rows, fold rows and held-out predictions,
        each table's file replaced."""
        search, trial_id = rows.trial["search"], rows.trial["trial_id"]
        self._write_tables(search, f"trial-{trial_id}.parquet", rows.tables())

    def write_finals(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        """A finalized model's rows (`finals`, `final_class_metrics`, `final_subgroups`,
        `final_conformal`, `final_explanations`), one file per trial and seed (and refit or
        not), replaced when finalize runs again."""
        (final,) = rows["finals"]
        refit = "-refit" if final.get("refit") else ""  # beside the trial's fold ensemble
        name = f"trial-{final['trial_id']}-seed-{final['seed']}{refit}.parquet"
        self._write_tables(final["search"], name, rows)

    def write_comparisons(self, search: str, records: list[dict[str, Any]]) -> None:
        """A finalize run's paired comparisons, one file per search, replaced when finalize
        runs again."""
        self._write_tables(search, "comparisons.parquet", {"comparisons": records})

    def write_decision_curves(self, search: str, records: list[dict[str, Any]]) -> None:
        """A finalize run's decision curves (two-class searches), one file per search,
        replaced when finalize runs again."""
        self._write_tables(search, "decision-curves.parquet", {"decision_curves": records})

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
        pq.write_table(data, buffer, write_page_checksum=True)  # checked on reading
        folder = f"{self.root}/{table}/search={check_search_name(search)}"
        write_file(self.fs, f"{folder}/{name}", buffer.getvalue().to_pybytes())

    # -- reading ----------------------------------------------------------------------
    def table(self, name: str, search: str | None = None, filter=None) -> pa.Table:
        """Table `name` (searches, trials, epochs, class_metrics), for one search or all.

        Raises:
            DamagedTable: a file of the table cannot be read (cut short, overwritten):
                it is named with its repair, never skipped, as the table without its
                rows would mislead (a pair ranked without its best trial).
        """
        if name not in TABLES:
            raise ValueError(f"no table {name!r}; the tables are {', '.join(TABLES)}")
        folder = f"{self.root}/{name}"
        if self.fs.get_file_info(folder).type == pafs.FileType.NotFound:
            return schema(name).empty_table()
        dataset = ds.dataset(
            folder,
            format=_VERIFIED_PARQUET,
            filesystem=self.fs,
            partitioning=ds.partitioning(pa.schema([("search", pa.string())]), flavor="hive"),
            schema=schema(name),  # given, so listing the files opens none of them
        )
        one_search = ds.field("search") == search if search is not None else None
        condition = one_search
        if filter is not None:
            condition = filter if condition is None else condition & filter
        try:
            return dataset.to_table(filter=condition)
        except (OSError, pa.ArrowException) as exc:  # pyarrow names one file, or none
            damaged = self._damaged_files(dataset, one_search)
            if not damaged:
                raise
            message = self._damage_message(name, damaged)
            raise DamagedTable(message, tuple(map(self._shown, damaged))) from exc

    def _damaged_files(self, dataset: ds.Dataset, condition) -> dict[str, str]:
        """The files of `dataset` (those `condition` keeps) that cannot be read -> why,
        found only once a read failed: every file's footer first, then, when those all
        read, every file whole (a page whose checksum fails)."""
        paths = [fragment.path for fragment in dataset.get_fragments(filter=condition)]
        for whole in (False, True):
            damaged = {}
            for path in paths:
                try:
                    with self.fs.open_input_file(path) as source:
                        file = pq.ParquetFile(source, page_checksum_verification=True)
                        if whole:
                            file.read()
                except FileNotFoundError:  # replaced or removed since: not damage
                    continue
                except (OSError, pa.ArrowException) as exc:
                    damaged[path] = str(exc).split("\n", 1)[0]
            if damaged:
                return damaged
        return {}

    def _damage_message(self, table: str, damaged: dict[str, str]) -> str:
        """What is damaged, why pyarrow cannot read it, and the commands that rewrite it."""
        count = "a damaged file" if len(damaged) == 1 else f"{len(damaged)} damaged files"
        its, them = ("its", "the file") if len(damaged) == 1 else ("their", "the files")
        files = "\n".join(f"  {self._shown(path)}: {why}" for path, why in damaged.items())
        searches = sorted({_search_of(path) for path in damaged} - {None})
        if table in _FINALIZED:  # written by finalize, not ingest
            repair = "run finalize again for the search, which rewrites its finals tables"
            commands = [f"polarmap finalize {self.location} --search {s}" for s in searches]
        else:
            repair = (
                "rebuild the search's tables from its folder (STORAGE/NAME), while that "
                "folder still holds the trials"
            )
            commands = [self._ingest_command(search) for search in searches]
        listed = "\n".join(f"  {command}" for command in commands)
        return (
            f"the {table} table has {count} (cut short or overwritten); read without {its} "
            f"rows it would mislead, so it is not read:\n{files}\n"
            f"repair: {repair}:\n{listed}\n"
            f"(or move {them} out of {self.location} to read the tables without {its} rows)"
        )

    def _shown(self, path: str) -> str:
        """A file system's path as a user names it (s3://bucket/..., a local path)."""
        scheme = self.location.partition("://")[0] if "://" in self.location else None
        return f"{scheme}://{path}" if scheme else path

    def _ingest_command(self, search: str) -> str:
        """`results ingest` for `search`'s folder: STORAGE/NAME beside STORAGE/results."""
        if _last_name(self.location) == "results":
            return (
                f"polarmap results ingest {join_location(parent_location(self.location), search)}"
            )
        return f"polarmap results ingest STORAGE/{search} --results {self.location}"


# Parquet pages are written with checksums and checked on reading, so a flipped byte in a
# page fails (and is named) rather than being read as a wrong value.
_VERIFIED_PARQUET = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True)
)
# the tables finalize writes (and rewrites when it runs again); the others, ingest
_FINALIZED = {
    "finals", "final_class_metrics", "final_subgroups", "final_conformal",
    "final_explanations", "decision_curves", "comparisons", "outer_predictions", "ensembles",
}  # fmt: skip


def _search_of(path: str) -> str | None:
    """The search a table file is of, from its Hive folder (`.../search=NAME/file`)."""
    folder = path.rsplit("/", 2)[-2] if path.count("/") >= 2 else ""
    return folder.removeprefix("search=") if folder.startswith("search=") else None


def _last_name(location: str) -> str:
    return location.partition("?")[0].rstrip("/").rsplit("/", 1)[-1]
