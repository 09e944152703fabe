"""Reader annotations of a view, optional manifest columns: `<view>_territory`, the
coronary territories a reader found abnormal (LAD, LCX, RCA, several joined by '+', or
`none`), and `<view>_scores`, the 17 segment scores 0-4 in AHA order as QPS-style
software writes them (0 normal ... 4 absent uptake).

They are what class activation maps are checked against: the CAM's hottest territory
should be an annotated one, its mass per segment should rank as the scores do.
"""

from __future__ import annotations

import re

from search.data.segments import TERRITORIES

__all__ = ["SEGMENTS", "format_scores", "parse_scores", "parse_territories"]

SEGMENTS = 17
_NAMES = {name.upper(): name for name in TERRITORIES}  # LCX is written LCx here
TERRITORY_EXPECTED = "LAD, LCX or RCA, several joined by '+', or none"
SCORES_EXPECTED = f"{SEGMENTS} integers 0-4 in AHA order (segments 1-{SEGMENTS})"


def parse_territories(text: str) -> tuple[str, ...]:
    """'LAD+RCA' -> ('LAD', 'RCA'); 'none' -> (). Case and spaces do not matter.

    Raises:
        ValueError: a name that is no territory, or one written twice.
    """
    cleaned = text.strip()
    if cleaned.lower() == "none":
        return ()
    parts = [p.strip().upper() for p in cleaned.split("+")]
    unknown = [p for p in parts if p not in _NAMES]
    if unknown or not parts:
        raise ValueError(f"territory {text!r}: expected {TERRITORY_EXPECTED}")
    if len(set(parts)) < len(parts):
        raise ValueError(
            f"territory {text!r}: a territory written twice; expected {TERRITORY_EXPECTED}"
        )
    return tuple(_NAMES[p] for p in parts)


def parse_scores(text: str) -> tuple[int, ...]:
    """'0 0 1 2 ...' (spaces, commas or semicolons between) -> 17 scores.

    Raises:
        ValueError: other than 17 values, or a value that is not an integer 0-4.
    """
    values = [v for v in re.split(r"[\s,;]+", text.strip()) if v]
    if len(values) != SEGMENTS or not all(
        v.isascii() and v.isdigit() and int(v) <= 4 for v in values
    ):
        found = f"{len(values)} value(s)" if len(values) != SEGMENTS else "a value outside 0-4"
        raise ValueError(f"scores {text!r}: {found}; expected {SCORES_EXPECTED}")
    return tuple(int(v) for v in values)


def format_scores(scores: tuple[int, ...]) -> str:
    """17 scores as a manifest cell: separated by spaces (no quoting needed in CSV)."""
    return " ".join(str(int(s)) for s in scores)
