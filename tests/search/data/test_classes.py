"""Class sets and how labels are read."""

from __future__ import annotations

import pytest

from search.data.classes import BINARY, TRIAD, ClassSet, parse_class_set


def test_triad_preset_indices():
    triad = parse_class_set("triad")
    assert triad is TRIAD
    assert triad.names == ("Infarction", "Ischemia", "Normal")
    assert [triad.index_of(n) for n in triad.names] == [0, 1, 2]
    assert len(triad) == 3


@pytest.mark.parametrize(
    ("label", "index"),
    [
        ("Normal", 2),
        ("normal", 2),
        (" NORMAL ", 2),
        ("ischemia", 1),
        ("INFARCTION", 0),
        ("2", 2),
        ("0", 0),
        (" 1 ", 1),
        ("Ischaemia", 1),
        ("infarct", 0),
    ],
)
def test_triad_reads_names_indices_and_aliases(label, index):
    assert TRIAD.index_of(label) == index


@pytest.mark.parametrize("label", ["3", "10", "Abnormal", "CAD", "", "Norm", "²", "٢"])
def test_triad_unknown_labels_are_none(label):
    assert TRIAD.index_of(label) is None


def test_binary_preset_indices():
    binary = parse_class_set("binary")
    assert binary is BINARY
    assert binary.names == ("non-CAD", "CAD")
    assert binary.index_of("non-CAD") == 0
    assert binary.index_of("CAD") == 1


@pytest.mark.parametrize("label", ["Non CAD", "noncad", "NON_CAD", "non-cad", "0"])
def test_binary_accepts_non_cad_spellings(label):
    assert BINARY.index_of(label) == 0


@pytest.mark.parametrize("label", ["cad", " CAD ", "1"])
def test_binary_accepts_cad_spellings(label):
    assert BINARY.index_of(label) == 1


def test_binary_rejects_out_of_range_index():
    assert BINARY.index_of("2") is None


def test_custom_class_set_keeps_the_given_order():
    classes = parse_class_set("A, B ,C")
    assert classes.name == "custom"
    assert classes.names == ("A", "B", "C")
    assert [classes.index_of(x) for x in ("a", "b", "C", "2")] == [0, 1, 2, 2]
    assert classes.index_of("D") is None


@pytest.mark.parametrize("spec", ["Normal", "Normal,", " , ", ""])
def test_a_single_class_is_rejected(spec):
    with pytest.raises(ValueError, match="at least two"):
        parse_class_set(spec)


@pytest.mark.parametrize("spec", ["A,B,A", "Normal,normal", "Non-CAD,noncad"])
def test_duplicate_class_names_are_rejected(spec):
    with pytest.raises(ValueError, match="distinct"):
        parse_class_set(spec)


def test_class_set_constructor_checks_its_names():
    with pytest.raises(ValueError):
        ClassSet("custom", ("only",))
    with pytest.raises(ValueError):
        ClassSet("custom", ("A", "-"))


def test_describe_lists_names_with_indices():
    assert TRIAD.describe() == "Infarction (0), Ischemia (1), Normal (2)"
