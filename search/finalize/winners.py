"""Which trials of a search to finalize, from its trials table."""

from __future__ import annotations

import pandas as pd

from results.leaderboard import rank_trials
from results.records import TrialStatus
from search.errors import SearchStateError, SettingsError

__all__ = ["GROUPINGS", "select_winners"]

GROUPINGS = ("backbone", "mode")


def select_winners(
    trials: pd.DataFrame, per: tuple[str, ...] | None = GROUPINGS, top: int | None = None
) -> pd.DataFrame:
    """The best trial of each group of `per` columns (default: each backbone and mode), or
    with `top`, the `top` best trials overall; best first, in the leaderboard's order
    (errored trials, and trials cut off by an interruption, never win).

    Raises:
        ValueError: `per` names a column other than backbone and mode, `top` is below 1,
            or no trial has a score.
    """
    if top is not None and top < 1:
        raise SettingsError(f"--top: need at least 1, got {top}")
    if top is None and (not per or any(column not in GROUPINGS for column in per)):
        raise SettingsError(f"--per {','.join(per or ())!r}: expected backbone, mode or both")
    unfinished = [TrialStatus.ERRORED, TrialStatus.INTERRUPTED]
    ranked = rank_trials(trials[~trials["status"].isin(unfinished)])
    if ranked.empty:
        raise SearchStateError("no trial of the search has a validation score to rank by")
    chosen = ranked.head(top) if top is not None else ranked.drop_duplicates(list(per))
    return chosen.reset_index(drop=True)
