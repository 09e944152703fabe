"""The best trial per (backbone, input mode) pair, ranked, as a text table."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_leaderboard", "leaderboard"]


def leaderboard(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The best row of each pair by `best_selection`, best pair first."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        score = row.get("best_selection")
        if score is None or (isinstance(score, float) and math.isnan(score)):
            continue
        if row["pair"] not in best or score > best[row["pair"]]["best_selection"]:
            best[row["pair"]] = row
    return sorted(best.values(), key=lambda r: -r["best_selection"])


def format_leaderboard(rows: list[dict[str, Any]]) -> str:
    board = leaderboard(rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["pair"]] = counts.get(row["pair"], 0) + 1
    lines = [
        "\nleaderboard (best validation selection metric per backbone and mode)",
        f"  {'#':>2} {'backbone/mode':32} {'best':>6} {'epochs':>6} {'trials':>6}  "
        "width depth dropout    a  unfreeze",
    ]
    for rank, row in enumerate(board, start=1):
        lines.append(
            f"  {rank:>2} {row['pair']:32} {row['best_selection']:>6.3f} {row['epochs']:>6} "
            f"{counts[row['pair']]:>6}  {row['width']!s:>5} {row['depth']!s:>5} "
            f"{row['dropout']:>7.2f} {row['a']:>4.2f} {row['unfreeze']!s:>9}"
        )
    if not board:
        lines.append("  (no trial reported a score)")
    return "\n".join(lines)
