"""The result tables as pandas DataFrames, filtered where they are read (so a filter on a
search or a column skips the files it does not need), for analysts and the commands."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pandas as pd
import pyarrow.dataset as ds

from results.schema import TABLES
from results.store import ResultStore

__all__ = [
    "learning_curves",
    "load_class_metrics",
    "load_epochs",
    "load_searches",
    "load_table",
    "load_trials",
]

# rows in the order a reader expects them
_ORDER = {
    "searches": ["started", "search"],
    "trials": ["search", "started", "trial_id"],
    "epochs": ["search", "trial_id", "epoch"],
    "class_metrics": ["search", "trial_id", "epoch", "class", "metric"],
    "fold_epochs": ["search", "trial_id", "epoch", "repeat", "fold"],
    "predictions": ["search", "trial_id", "repeat", "patient_id"],
    "finals": ["search", "trial_id", "seed"],
    "final_class_metrics": ["search", "trial_id", "seed", "class", "metric"],
    "final_subgroups": ["search", "trial_id", "seed", "attribute", "group", "metric"],
    "final_conformal": ["search", "trial_id", "seed", "class"],
    "final_explanations": ["search", "trial_id", "seed", "view", "check", "attribution"],
    "decision_curves": ["search", "model", "threshold"],
    "comparisons": ["search", "kind", "model_a", "model_b", "metric"],
    "outer_predictions": ["search", "model", "outer_fold", "patient_id"],
    "ensembles": ["search", "weight", "trial_id"],
}


def load_table(
    results: str | os.PathLike[str], table: str, search: str | None = None, **where: Any
) -> pd.DataFrame:
    """Table `table` under `results` (a folder or a URI such as s3://bucket/results), for
    one search or all. Each keyword keeps the rows whose column equals the value, or is
    one of the values when given a list, tuple or set; None keeps rows where it is empty.

    Raises:
        ValueError: the table, or a keyword's column, does not exist.
        search.errors.DamagedTable: a file of the table cannot be read; it names the file
            and the repair (`polarmap results ingest STORAGE/NAME`).
    """
    if table not in TABLES:
        raise ValueError(f"no table {table!r}; the tables are {', '.join(TABLES)}")
    columns = [name for name, _ in TABLES[table]]
    condition = None
    for column, value in where.items():
        if column not in columns:
            raise ValueError(
                f"table {table!r} has no column {column!r}; its columns are {', '.join(columns)}"
            )
        term = _matches(ds.field(column), value)
        condition = term if condition is None else condition & term
    frame = ResultStore(results).table(table, search=search, filter=condition).to_pandas()
    return frame.sort_values(_ORDER[table], kind="stable").reset_index(drop=True)


def load_searches(
    results: str | os.PathLike[str], search: str | None = None, **where: Any
) -> pd.DataFrame:
    """The searches table: one row per search (see `load_table` for the filters)."""
    return load_table(results, "searches", search, **where)


def load_trials(
    results: str | os.PathLike[str], search: str | None = None, **where: Any
) -> pd.DataFrame:
    """The trials table: one row per trial, e.g. `load_trials(root, backbone="resnet18",
    status=["completed", "stopped"])`."""
    return load_table(results, "trials", search, **where)


def load_epochs(
    results: str | os.PathLike[str], search: str | None = None, **where: Any
) -> pd.DataFrame:
    """The epochs table: one row per trial and epoch."""
    return load_table(results, "epochs", search, **where)


def load_class_metrics(
    results: str | os.PathLike[str], search: str | None = None, **where: Any
) -> pd.DataFrame:
    """The per-class metrics, long: one row per trial, epoch, class and metric."""
    return load_table(results, "class_metrics", search, **where)


def learning_curves(
    results: str | os.PathLike[str], trial_id: str, search: str | None = None
) -> pd.DataFrame:
    """A trial's epochs in order: losses, accuracies and validation metrics per epoch,
    with its stage (warmup, finetune).

    Raises:
        LookupError: no such trial, or (without `search`) trials of that id in several
            searches.
    """
    epochs = load_epochs(results, search, trial_id=trial_id)
    searches = sorted(set(epochs["search"]))
    where = f" in search {search!r}" if search else ""
    if not searches:
        raise LookupError(f"{results}: no epochs of trial {trial_id!r}{where}")
    if len(searches) > 1:
        raise LookupError(
            f"{results}: trial {trial_id!r} is in searches {', '.join(searches)}; name one"
        )
    return epochs


def _matches(field: ds.Expression, value: Any) -> ds.Expression:
    if value is None:
        return field.is_null()
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return field.isin(list(value))
    return field == value
