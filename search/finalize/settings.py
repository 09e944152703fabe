"""What `polarmap finalize` is asked: which search, which winners, how many seeds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from search.finalize.winners import GROUPINGS

__all__ = ["FinalizeSettings"]


@dataclass(frozen=True)
class FinalizeSettings:
    """What `polarmap finalize` was asked: which search, which winners, how many seeds."""

    results: str
    search: str | None = None
    per: tuple[str, ...] | None = GROUPINGS
    top: int | None = None
    seeds: int = 3
    threads: int = 2
    bootstrap: int = 1000
    data: Path | None = None  # the data set, when it moved since the search
    cache: Path | None = None
    refit: bool = False  # cross-validated winners: one model on all training patients
    out: Path | None = None  # default: STORAGE/finals/SEARCH beside the tables
    ensemble: bool = True  # the greedy ensemble across the search's trials, as one more
    conformal_alpha: float = 0.1  # prediction sets cover each class at 1 - alpha
    mlflow: str | None = None  # tracking URI; None: the search's own, if it had one
