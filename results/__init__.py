"""Results: the searches, trials and epochs tables in Parquet, for analysts with any tool
(docs/results.md), and what the commands read from them: the leaderboard, a trial's
learning curves, a search's summary; the statuses a trial and a search can have
(`TrialStatus`, `SearchStatus`) and what the store refuses to write (`UnknownColumn`,
`UnknownStatus`). Plots are in `results.plots`."""

from results.leaderboard import format_leaderboard, leaderboard
from results.read import (
    learning_curves,
    load_class_metrics,
    load_epochs,
    load_searches,
    load_table,
    load_trials,
)
from results.records import SearchStatus, TrialStatus, UnknownColumn, UnknownStatus
from results.schema import SCHEMA_VERSION, schema
from results.store import ResultStore
from results.summary import SearchSummary, format_summary, search_summaries

__all__ = [
    "SCHEMA_VERSION",
    "ResultStore",
    "SearchStatus",
    "SearchSummary",
    "TrialStatus",
    "UnknownColumn",
    "UnknownStatus",
    "format_leaderboard",
    "format_summary",
    "leaderboard",
    "learning_curves",
    "load_class_metrics",
    "load_epochs",
    "load_searches",
    "load_table",
    "load_trials",
    "schema",
    "search_summaries",
]
