"""A reader's annotations in the manifest (`<view>_territory`, `<view>_scores`): read
into each patient, not taken for metadata, and a bad cell named by row, column and what
was expected, before anything is computed."""

from __future__ import annotations

import pytest

from search.data import check_dataset
from search.data.annotations import format_scores, parse_scores, parse_territories
from tests.search.data.test_check import errors_at

SCORES = "0 0 2 3 0 0 0 1 4 0 0 0 0 0 2 0 0"


def test_territories_and_scores_are_read_as_readers_write_them():
    assert parse_territories("LAD") == ("LAD",)
    assert parse_territories(" lcx + RCA ") == ("LCx", "RCA")  # LCX, as the project spells it
    assert parse_territories("None") == ()
    assert parse_scores(SCORES)[8] == 4 and len(parse_scores(SCORES)) == 17
    assert parse_scores(SCORES.replace(" ", ";")) == parse_scores(SCORES)
    assert format_scores(parse_scores(SCORES)) == SCORES


def annotate(rows, territory: str, scores: str) -> None:
    rows[0] += ["stress_territory", "stress_scores"]
    for row in rows[1:]:
        row += ["none", "0 " * 16 + "0"]
    rows[2][-2:] = [territory, scores]


def test_annotations_reach_each_patient_and_are_not_metadata(manifest, edit_manifest):
    report = check_dataset(edit_manifest(lambda rows: annotate(rows, "LAD+RCA", SCORES)))
    assert report.ok, [str(p) for p in report.problems]
    dataset = report.dataset
    assert "stress_territory" not in dataset.metadata_columns
    first, second = dataset.patients[:2]
    assert first.territories["stress"] == () and first.scores["stress"] == (0,) * 17
    assert second.territories["stress"] == ("LAD", "RCA")
    assert second.scores["stress"] == parse_scores(SCORES)
    assert "rest" not in second.territories  # a view without the columns has none


@pytest.mark.parametrize(
    ("territory", "scores", "field", "expected"),
    [("LAD+LM", SCORES, "stress_territory", "expected LAD, LCX or RCA, several joined by '+'"),
     ("LAD+LAD", SCORES, "stress_territory", "a territory written twice"),
     ("LAD", SCORES + " 0", "stress_scores", "18 value(s); expected 17 integers 0-4 in AHA order"),
     ("LAD", SCORES.replace("4", "5"), "stress_scores", "a value outside 0-4")],
)  # fmt: skip
def test_a_bad_annotation_is_named_by_row_and_column(
    manifest, edit_manifest, territory, scores, field, expected
):
    report = check_dataset(edit_manifest(lambda rows: annotate(rows, territory, scores)))
    [message] = errors_at(report, 3, field)
    assert expected in message
