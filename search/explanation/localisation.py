"""Do a model's class activation maps point where a reader sees disease? Two measures
against a reader's annotations of a view (`<view>_territory`, `<view>_scores`), as
saliency studies of perfusion models report them (Spier et al. 2019):

- the pointing game: the CAM's hottest coronary territory (mean over its segments) is one
  the reader marked abnormal; patients whose view has no abnormal territory are left out;
- the per-patient rank correlation (Spearman) between the CAM's mean per AHA segment and
  the reader's 17 scores; patients whose scores are all equal (nothing ranks) are left out.

Each is a mean over patients with a percentile bootstrap interval, and each is measured
for references that did not learn where disease is: always naming the view's most
common annotated territory (a CAM lit on that territory's segments alone) and, where the
caller has one, a label-shuffled model's CAMs. A model localises only where it clearly
beats them. A CAM that ties its top territories points nowhere (a miss), and a constant
CAM ranks nothing (correlation 0), so a model cannot score by having no evidence at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from search.data.segments import TERRITORIES
from search.explanation.segments import TERRITORY_NAMES, territory_means

__all__ = [
    "MOST_COMMON",
    "POINTING_GAME",
    "RANK_CORRELATION",
    "LocalisationFigure",
    "bootstrap_interval",
    "localisation_figures",
    "most_common_territory",
    "pointing_hits",
    "rank_correlations",
    "territory_attribution",
]

POINTING_GAME = "pointing_game"
RANK_CORRELATION = "segment_rank_correlation"
MOST_COMMON = "most_common_territory"  # the reference attribution named so in the tables


@dataclass(frozen=True)
class LocalisationFigure:
    """One measure of one attribution on one view: the mean over `patients`, with its
    95 % percentile bootstrap interval."""

    view: str
    check: str  # POINTING_GAME or RANK_CORRELATION
    attribution: str  # grad_cam, label_shuffled, most_common_territory
    value: float
    low: float
    high: float
    patients: int


def pointing_hits(segment_values: np.ndarray, annotated: Sequence[tuple[str, ...]]) -> np.ndarray:
    """Whether each patient's hottest territory is one the reader marked; a tie at the top
    is a miss.

    Args:
        segment_values: (N, 17) CAM means per segment.
        annotated: N non-empty tuples of territory names.
    """
    means = territory_means(segment_values)
    if len(means) != len(annotated):
        raise ValueError(f"{len(means)} CAMs for {len(annotated)} annotated patients")
    top = means.max(axis=1, keepdims=True)
    single = np.isclose(means, top).sum(axis=1) == 1
    hottest = np.asarray(TERRITORY_NAMES)[means.argmax(axis=1)]
    marked = np.array([h in a for h, a in zip(hottest, annotated, strict=True)], dtype=bool)
    return single & marked


def rank_correlations(segment_values: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Spearman's rho between each patient's CAM segment means and the reader's scores;
    0 where the CAM is constant, NaN where the scores are (such patients rank nothing)."""
    values = np.asarray(segment_values, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if values.shape != scores.shape or values.ndim != 2 or values.shape[1] != 17:
        raise ValueError(
            f"segment values {values.shape} and scores {scores.shape}: expected both (N, 17)"
        )
    rho = np.full(len(values), np.nan)
    for i, (cam, score) in enumerate(zip(values, scores, strict=True)):
        if np.ptp(score) == 0:
            continue
        rho[i] = 0.0 if np.ptp(cam) == 0 else spearmanr(cam, score).statistic
    return rho


def territory_attribution(territory: str, patients: int) -> np.ndarray:
    """(patients, 17) segment values lit (1) on `territory`'s segments alone: the CAM of a
    reference that always names that territory."""
    values = np.zeros((patients, 17))
    values[:, [s - 1 for s in TERRITORIES[territory]]] = 1.0
    return values


def most_common_territory(annotated: Sequence[tuple[str, ...]]) -> str:
    """The territory marked most often; ties go to the first in `TERRITORY_NAMES`."""
    counts = Counter(t for marked in annotated for t in marked)
    if not counts:
        raise ValueError("no annotated territory to count")
    return max(TERRITORY_NAMES, key=lambda t: (counts[t], -TERRITORY_NAMES.index(t)))


def bootstrap_interval(
    values: np.ndarray, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of `values` over patients (NaN, NaN
    for none)."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return float("nan"), float("nan")
    draws = np.random.default_rng(seed).integers(0, len(values), (resamples, len(values)))
    means = values[draws].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def localisation_figures(
    view: str,
    attributions: dict[str, np.ndarray],
    territories: Sequence[tuple[str, ...] | None],
    scores: Sequence[tuple[int, ...] | None],
    resamples: int = 2000,
    seed: int = 0,
) -> list[LocalisationFigure]:
    """Both measures for each attribution of one view, and for the most-common-territory
    reference, over the patients the reader annotated.

    Args:
        view: the view's name, as the tables write it.
        attributions: name -> (N, 17) CAM segment means of the N patients, in one order.
        territories: each patient's marked territories (() for none), None where unread.
        scores: each patient's 17 scores, None where unread.
    """
    if any(len(v) != len(territories) or len(v) != len(scores) for v in attributions.values()):
        raise ValueError("attributions, territories and scores must hold the same patients")
    marked = [i for i, t in enumerate(territories) if t]
    scored = [i for i, s in enumerate(scores) if s is not None and len(set(s)) > 1]
    named = dict(attributions)
    if marked:
        common = most_common_territory([territories[i] for i in marked])
        named[MOST_COMMON] = territory_attribution(common, len(territories))
    figures = []
    for name, values in named.items():
        values = np.asarray(values, dtype=np.float64)
        if marked:
            hits = pointing_hits(values[marked], [territories[i] for i in marked])
            figures.append(_figure(view, POINTING_GAME, name, hits, resamples, seed))
        if scored:
            rho = rank_correlations(values[scored], np.asarray([scores[i] for i in scored]))
            figures.append(_figure(view, RANK_CORRELATION, name, rho, resamples, seed))
    return figures


def _figure(view, check, name, values, resamples, seed) -> LocalisationFigure:
    values = np.asarray(values, dtype=np.float64)
    low, high = bootstrap_interval(values, resamples, seed)
    return LocalisationFigure(view, check, name, float(values.mean()), low, high, len(values))
