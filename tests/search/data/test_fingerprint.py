"""Data set fingerprints: what identifies a data set and what does not."""

from __future__ import annotations

from search.data.fingerprint import data_fingerprint

CLASSES = ("Infarction", "Ischemia", "Normal")
ENTRIES = [
    ("p001", 0, {"rest": "a" * 64, "stress": "b" * 64}),
    ("p002", 1, {"rest": "c" * 64, "stress": "d" * 64}),
    ("p003", 2, {"rest": "e" * 64, "stress": "f" * 64}),
]


def fingerprint(entries=ENTRIES, classes=CLASSES) -> str:
    return data_fingerprint(classes, entries)


def test_fingerprint_is_a_sha256_hex_digest():
    value = fingerprint()
    assert len(value) == 64
    int(value, 16)


def test_patient_order_does_not_matter():
    assert fingerprint(list(reversed(ENTRIES))) == fingerprint()
    assert fingerprint([ENTRIES[1], ENTRIES[2], ENTRIES[0]]) == fingerprint()


def test_view_dict_order_does_not_matter():
    reordered = [(pid, label, dict(reversed(list(views.items())))) for pid, label, views in ENTRIES]
    assert list(reordered[0][2]) != list(ENTRIES[0][2])
    assert fingerprint(reordered) == fingerprint()


def test_accepts_any_iterable_of_entries():
    assert fingerprint(iter(ENTRIES), iter(CLASSES)) == fingerprint()


def test_changes_with_a_label():
    changed = [ENTRIES[0], ("p002", 2, ENTRIES[1][2]), ENTRIES[2]]
    assert fingerprint(changed) != fingerprint()


def test_changes_with_an_image_hash():
    changed = [ENTRIES[0], ("p002", 1, {"rest": "c" * 64, "stress": "0" * 64}), ENTRIES[2]]
    assert fingerprint(changed) != fingerprint()


def test_changes_with_a_view_name():
    changed = [ENTRIES[0], ("p002", 1, {"rest": "c" * 64, "stress_nac": "d" * 64}), ENTRIES[2]]
    assert fingerprint(changed) != fingerprint()


def test_changes_with_a_patient_id():
    changed = [ENTRIES[0], ("p002b", 1, ENTRIES[1][2]), ENTRIES[2]]
    assert fingerprint(changed) != fingerprint()


def test_changes_with_a_patient_added_or_removed():
    assert fingerprint(ENTRIES[:2]) != fingerprint()
    assert fingerprint([*ENTRIES, ("p004", 0, {"rest": "1" * 64})]) != fingerprint()


def test_changes_with_class_names_or_their_order():
    assert fingerprint(classes=("Infarct", "Ischemia", "Normal")) != fingerprint()
    assert fingerprint(classes=("Ischemia", "Infarction", "Normal")) != fingerprint()
