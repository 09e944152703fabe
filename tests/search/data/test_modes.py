"""Input modes: which views one model sees."""

from __future__ import annotations

import pytest

from search.data.modes import PRESET_MODES, InputMode, parse_mode


@pytest.mark.parametrize(
    ("spec", "views"),
    [("stress", ("stress",)), ("rest", ("rest",)), ("dual", ("rest", "stress"))],
)
def test_presets(spec, views):
    mode = parse_mode(spec)
    assert mode.name == spec
    assert mode.views == views
    assert mode is PRESET_MODES[spec]


def test_preset_name_is_read_with_spaces_around():
    assert parse_mode("  dual ").views == ("rest", "stress")


def test_custom_views_keep_their_order():
    mode = parse_mode("rest_nac+stress_nac")
    assert mode.views == ("rest_nac", "stress_nac")
    assert mode.name == "rest_nac+stress_nac"
    assert parse_mode("stress+rest").views == ("stress", "rest")


def test_single_custom_view():
    assert parse_mode("stress_nac").views == ("stress_nac",)


@pytest.mark.parametrize("spec", ["rest+rest", "stress+rest+stress"])
def test_repeated_views_are_rejected(spec):
    with pytest.raises(ValueError, match="repeats"):
        parse_mode(spec)


@pytest.mark.parametrize(
    "spec", ["rest-nac", "rest+stress-nac", "rest+", "+stress", "rest++stress", "_rest", "", "a b"]
)
def test_bad_view_names_are_rejected(spec):
    with pytest.raises(ValueError):
        parse_mode(spec)


def test_input_mode_needs_a_view():
    with pytest.raises(ValueError, match="no views"):
        InputMode("empty", ())
