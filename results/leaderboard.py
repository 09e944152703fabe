"""The best trial of each (backbone, input mode), ranked, from the trials table."""

from __future__ import annotations

import pandas as pd

from results.read import load_trials

__all__ = ["format_leaderboard", "leaderboard", "rank_trials"]

COLUMNS = [
    "search", "backbone", "mode", "selection_metric", "best_selection", "best_val_roc_auc",
    "best_epoch", "trials", "width", "depth", "dropout", "a", "effective_unfreeze", "trial_id",
]  # fmt: skip


# best first; ties go to the lower validation loss (as epochs are chosen), then the trial id
RANKING = ["best_selection", "best_val_loss", "trial_id"]


def leaderboard(results_root: str, search: str | None = None) -> pd.DataFrame:
    """One row per (search, backbone, mode): its best trial by the selection metric (ties:
    lower validation loss, then trial id), with the number of trials the pair ran; best
    first."""
    trials = rank_trials(load_trials(results_root, search))
    if trials.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = ["search", "backbone", "mode"]
    counts = trials.groupby(keys).size().rename("trials")
    best = trials.drop_duplicates(keys).join(counts, on=keys)
    return best[COLUMNS].reset_index(drop=True)


def rank_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Scored trials, best first (the leaderboard's order)."""
    scored = trials.dropna(subset=["best_selection"])
    return scored.sort_values(RANKING, ascending=[False, True, True], kind="stable")


def format_leaderboard(board: pd.DataFrame) -> str:
    """The leaderboard as a text table, one line per backbone/mode, best first."""
    lines = [
        "\nleaderboard (best validation selection metric per backbone and mode)",
        f"  {'#':>2} {'backbone/mode':32} {'best':>6} {'epoch':>5} {'trials':>6}  "
        "width depth dropout    a  unfreeze",
    ]
    for rank, row in enumerate(board.itertuples(index=False), start=1):
        pair = f"{row.backbone}/{row.mode}"
        lines.append(
            f"  {rank:>2} {pair:32} {row.best_selection:>6.3f} {row.best_epoch:>5} "
            f"{row.trials:>6}  {row.width:>5} {row.depth:>5} {row.dropout:>7.2f} "
            f"{row.a:>4.2f} {row.effective_unfreeze:>9}"
        )
    if board.empty:
        lines.append("  (no trial reported a score)")
    return "\n".join(lines)
