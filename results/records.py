"""The result tables' records as types: the statuses a trial and a search can have, the
check the store makes before it writes (a key the table has no column for, or a status
that is none of these, is refused rather than written as null), and typed rows of the
epochs, trials and finals tables.

The statuses are `str` enums: they compare equal to, and are written to Parquet as, the
same plain strings as ever (`TrialStatus.COMPLETED == "completed"`)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from results.schema import TABLES
from search.errors import InternalError

__all__ = [
    "TABLE_STATUSES",
    "EpochRow",
    "FinalRow",
    "SearchStatus",
    "TrialRow",
    "TrialStatus",
    "UnknownColumn",
    "UnknownStatus",
    "check_records",
]


class TrialStatus(enum.StrEnum):
    """A trials row's `status`: how the trial ended."""

    COMPLETED = "completed"  # ran every epoch
    STOPPED = "stopped"  # by the scheduler, or by the time budget
    ERRORED = "errored"
    INTERRUPTED = "interrupted"  # cut off with the search (`results ingest`); resume goes on


class SearchStatus(enum.StrEnum):
    """A searches row's `status`: how the search stands."""

    RUNNING = "running"  # also what a killed driver leaves, with no end
    COMPLETED = "completed"
    STOPPED_BY_TIME_BUDGET = "stopped by the time budget"
    INTERRUPTED = "interrupted"  # the driver stopped with an error or Ctrl-C: resume it
    INGESTED = "ingested"  # rebuilt by `results ingest`


# the tables with a status column, and the enum whose values it may hold
TABLE_STATUSES: dict[str, type[enum.StrEnum]] = {"trials": TrialStatus, "searches": SearchStatus}


class UnknownColumn(InternalError, ValueError):
    """A record holds keys its table has no column for: written, they would be lost (a
    misspelt key reads as null)."""

    def __init__(self, table: str, unknown: Iterable[str], known: Iterable[str]):
        self.table, self.unknown, self.known = table, sorted(unknown), list(known)
        super().__init__(
            f"table {table!r} has no column {', '.join(map(repr, self.unknown))}; "
            f"its columns are {', '.join(self.known)}"
        )


class UnknownStatus(InternalError, ValueError):
    """A record's status is none of its table's statuses."""

    def __init__(self, table: str, status: Any, allowed: Iterable[str]):
        self.table, self.status, self.allowed = table, status, list(allowed)
        super().__init__(
            f"table {table!r}: status {status!r} is not one of {', '.join(map(repr, self.allowed))}"
        )


def check_records(table: str, records: Iterable[Mapping[str, Any]]) -> None:
    """Refuse records that `table` could not hold as they are: a key it has no column
    for, or (trials, searches) a status none of its enum's values. A missing key, or a
    null status, is a null, as ever.

    Raises:
        UnknownColumn: a key is not one of the table's columns.
        UnknownStatus: a status is not one of the table's statuses.
    """
    records = list(records)
    columns = [name for name, _ in TABLES[table]]
    unknown = {key for record in records for key in record}.difference(columns)
    if unknown:
        raise UnknownColumn(table, unknown, columns)
    statuses = TABLE_STATUSES.get(table)
    if statuses is None:
        return
    allowed = [status.value for status in statuses]
    for record in records:
        status = record.get("status")
        if status is not None and status not in allowed:
            raise UnknownStatus(table, status, allowed)


# -- typed rows: one field per column of the table's schema (`results.schema`) -----------
_PYTHON_TYPES = {
    "string": str,
    "int64": int,
    "double": float,
    "bool": bool,
    "timestamp[ms, tz=UTC]": datetime,
    "list<item: double>": list[float],
    "list<item: int64>": list[int],
}


class _Row:
    """What every typed row does: read from, and give back, a table's plain row."""

    table: ClassVar[str]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]):
        """The typed row of a plain one (a missing column is None).

        Raises:
            UnknownColumn, UnknownStatus: as `check_records`.
        """
        check_records(cls.table, [row])
        return cls(**row)

    def to_row(self) -> dict[str, Any]:
        """The plain row, every column of the table, as the store writes it."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _row_class(name: str, table: str, doc: str) -> type[_Row]:
    fields = [
        (column, _PYTHON_TYPES[str(kind)] | None, dataclasses.field(default=None))
        for column, kind in TABLES[table]
    ]
    row = dataclasses.make_dataclass(
        name, fields, bases=(_Row,), namespace={"table": table, "__doc__": doc}, kw_only=True
    )
    row.__module__ = __name__
    return row


EpochRow = _row_class("EpochRow", "epochs", "An epochs row: one trial's figures of one epoch.")
TrialRow = _row_class("TrialRow", "trials", "A trials row: one trial, how it ran and ended.")
FinalRow = _row_class("FinalRow", "finals", "A finals row: one finalized model's test.")
