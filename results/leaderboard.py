"""The best trial of each (backbone, input mode), ranked, from the trials table."""

from __future__ import annotations

import pandas as pd

from results.store import ResultStore

__all__ = ["leaderboard"]

COLUMNS = [
    "search", "backbone", "mode", "best_selection", "best_val_roc_auc", "best_epoch",
    "trials", "width", "depth", "dropout", "a", "effective_unfreeze", "trial_id",
]  # fmt: skip


def leaderboard(results_root: str, search: str | None = None) -> pd.DataFrame:
    """One row per (search, backbone, mode): its best trial by the selection metric, with
    the number of trials the pair ran; best first."""
    trials = ResultStore(results_root).table("trials", search=search).to_pandas()
    trials = trials.dropna(subset=["best_selection"])
    if trials.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = ["search", "backbone", "mode"]
    counts = trials.groupby(keys).size().rename("trials")
    best = trials.sort_values("best_selection", ascending=False).drop_duplicates(keys)
    board = best.join(counts, on=keys).sort_values("best_selection", ascending=False)
    return board[COLUMNS].reset_index(drop=True)
