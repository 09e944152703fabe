"""Localisation measures against a reader's annotations: the pointing game and the rank
correlation per patient, their references and bootstrap intervals, on segment values whose
answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from search.data.segments import TERRITORIES
from search.explanation.localisation import (
    MOST_COMMON,
    POINTING_GAME,
    RANK_CORRELATION,
    bootstrap_interval,
    localisation_figures,
    most_common_territory,
    pointing_hits,
    rank_correlations,
    territory_attribution,
)


def lit(territory: str, value: float = 1.0) -> np.ndarray:
    """17 segment values lit on one territory."""
    values = np.zeros(17)
    values[[s - 1 for s in TERRITORIES[territory]]] = value
    return values


def test_a_hit_is_the_hottest_territory_among_the_marked_ones():
    values = np.stack([lit("LAD"), lit("RCA"), lit("LCx"), np.zeros(17)])
    marked = [("LAD",), ("LAD", "RCA"), ("RCA",), ("LAD",)]
    assert pointing_hits(values, marked).tolist() == [True, True, False, False]  # a tie misses


def test_rank_correlation_follows_the_scores_and_leaves_out_unranked_patients():
    scores = np.stack([lit("LCx", 3), lit("LCx", 3), np.zeros(17), lit("LCx", 2)])
    values = np.stack([lit("LCx", 0.9), lit("LAD", 0.9), lit("LCx"), np.full(17, 0.5)])
    rho = rank_correlations(values, scores)
    assert rho[0] == pytest.approx(1.0)
    assert rho[1] < 0  # hot where the reader saw nothing, cold where they did
    assert np.isnan(rho[2])  # scores all 0: nothing to rank
    assert rho[3] == 0.0  # a constant CAM ranks nothing: no credit
    with pytest.raises(ValueError, match=r"expected both \(N, 17\)"):
        rank_correlations(values[:, :16], scores[:, :16])


def test_the_most_common_territory_and_its_reference_attribution():
    assert most_common_territory([("RCA",), ("LAD", "RCA"), ("LCx",)]) == "RCA"
    assert most_common_territory([("RCA",), ("LAD",)]) == "LAD"  # a tie: the first named
    reference = territory_attribution("RCA", 2)
    assert reference.shape == (2, 17)
    assert set(np.flatnonzero(reference[0]) + 1) == set(TERRITORIES["RCA"])


def test_the_bootstrap_interval_holds_the_mean_and_narrows_with_patients():
    rng = np.random.default_rng(0)
    few, many = rng.random(10) < 0.7, rng.random(400) < 0.7
    low, high = bootstrap_interval(few, seed=1)
    assert low <= few.mean() <= high
    wide = high - low
    low, high = bootstrap_interval(many, seed=1)
    assert low <= many.mean() <= high and high - low < wide / 3
    assert bootstrap_interval(few, seed=1) == bootstrap_interval(few, seed=1)
    assert all(np.isnan(bootstrap_interval(np.array([]))))


def test_a_cam_on_the_marked_territory_beats_both_references():
    """Twenty patients, a defect in LAD, RCA or LCx (LAD the most common): a CAM lit on
    each patient's own territory points right every time, the reference only on LAD, a
    shuffled model's CAMs (lit on someone else's territory) about as often as chance."""
    truth = ["LAD"] * 10 + ["RCA"] * 5 + ["LCx"] * 5
    territories = [(t,) for t in truth] + [()] * 4  # and four normals
    scores = [tuple(lit(t, 3).astype(int)) for t in truth] + [tuple([0] * 17)] * 4
    learned = np.stack([lit(t) for t in truth] + [np.zeros(17)] * 4)
    shuffled = learned[np.random.default_rng(3).permutation(len(learned))]

    figures = localisation_figures("stress", {"grad_cam": learned, "label_shuffled": shuffled},
                                   territories, scores, seed=0)  # fmt: skip
    got = {(f.check, f.attribution): f for f in figures}
    assert {f.view for f in figures} == {"stress"}
    pointing = {a: got[(POINTING_GAME, a)] for a in ("grad_cam", "label_shuffled", MOST_COMMON)}
    assert pointing["grad_cam"].value == 1.0 and pointing["grad_cam"].patients == 20
    assert pointing[MOST_COMMON].value == 0.5
    assert pointing["label_shuffled"].value < pointing["grad_cam"].low
    assert pointing[MOST_COMMON].high < pointing["grad_cam"].value
    ranked = {a: got[(RANK_CORRELATION, a)] for a in ("grad_cam", "label_shuffled", MOST_COMMON)}
    assert ranked["grad_cam"].value == pytest.approx(1.0) and ranked["grad_cam"].patients == 20
    assert ranked[MOST_COMMON].value < ranked["grad_cam"].low
    for figure in figures:
        assert figure.low <= figure.value <= figure.high


def test_views_without_annotations_give_no_figures_and_lengths_must_agree():
    values = np.zeros((3, 17))
    assert localisation_figures("rest", {"grad_cam": values}, [None, (), ()], [None] * 3) == []
    with pytest.raises(ValueError, match="same patients"):
        localisation_figures("rest", {"grad_cam": values}, [()] * 2, [None] * 2)
