"""Stratified, patient-level, seeded splits."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest

from search.data.problems import DataError
from search.data.splits import Split, SplitSpec, feasibility_problems, split_patients

NAMES = ("Infarction", "Ischemia", "Normal")


def make_labels(*sizes: int) -> dict[str, int]:
    """Patient id -> class index, `sizes[i]` patients of class i."""
    return {f"c{label}-p{i:03d}": label for label, n in enumerate(sizes) for i in range(n)}


def class_counts(ids, labels: dict[str, int]) -> Counter:
    return Counter(labels[pid] for pid in ids)


SIZES = [(65, 18, 7), (7, 7, 7), (30, 41, 52)]
SEEDS = [0, 1, 7, 2024]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("sizes", SIZES)
def test_split_is_patient_disjoint_and_covers_every_patient_once(seed, sizes):
    labels = make_labels(*sizes)
    split = split_patients(labels, SplitSpec(seed=seed), NAMES)

    assert len(split.train) + len(split.val) + len(split.test) == len(labels)
    assert set(split.train) | set(split.val) | set(split.test) == set(labels)
    assert not set(split.train) & set(split.val)
    assert not set(split.train) & set(split.test)
    assert not set(split.val) & set(split.test)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("sizes", SIZES)
def test_each_class_count_per_split_matches_allocation(seed, sizes):
    labels = make_labels(*sizes)
    spec = SplitSpec(seed=seed)
    split = split_patients(labels, spec, NAMES)

    train, val, test = (class_counts(ids, labels) for ids in (split.train, split.val, split.test))
    for label, n in enumerate(sizes):
        assert (train[label], val[label], test[label]) == spec.allocation(n)
        assert min(train[label], val[label], test[label]) >= 1


@pytest.mark.parametrize(
    ("n", "expected"),
    [(65, (45, 10, 10)), (18, (12, 3, 3)), (7, (5, 1, 1)), (100, (70, 15, 15))],
)
def test_allocation_rounds_each_share_to_the_nearest_patient(n, expected):
    """65 * 15 % = 9.75 -> 10, 18 * 15 % = 2.7 -> 3, 7 * 15 % = 1.05 -> 1."""
    assert SplitSpec().allocation(n) == expected


def test_allocation_with_folds_keeps_no_separate_validation():
    spec = SplitSpec(0.85, 0.0, 0.15, folds=5)
    assert spec.allocation(20) == (17, 0, 3)


def test_same_seed_and_labels_give_identical_split():
    labels = make_labels(65, 18, 7)
    spec = SplitSpec(seed=3)
    assert split_patients(labels, spec, NAMES) == split_patients(dict(labels), spec, NAMES)


def test_different_seed_gives_different_test_split():
    labels = make_labels(50, 30, 20)
    first = split_patients(labels, SplitSpec(seed=0), NAMES)
    second = split_patients(labels, SplitSpec(seed=1), NAMES)
    assert first.test != second.test
    assert len(first.test) == len(second.test)


def test_input_order_does_not_change_the_split():
    labels = make_labels(65, 18, 7)
    items = list(labels.items())
    random.Random(5).shuffle(items)
    shuffled = dict(items)
    assert list(shuffled) != list(labels)

    spec = SplitSpec(seed=11)
    assert split_patients(shuffled, spec, NAMES) == split_patients(labels, spec, NAMES)


def test_validation_fraction_does_not_change_the_test_split():
    labels = make_labels(65, 18, 7)
    narrow = split_patients(labels, SplitSpec.parse("70/15/15", seed=4), NAMES)
    wide = split_patients(labels, SplitSpec.parse("60/25/15", seed=4), NAMES)

    assert narrow.test == wide.test
    assert narrow.val != wide.val
    assert set(narrow.val) < set(wide.val)


@pytest.mark.parametrize("fractions", ["70/15/15", "85/0/15"])
def test_kfold_keeps_the_test_split_of_the_plain_split(fractions):
    labels = make_labels(65, 18, 7)
    plain = split_patients(labels, SplitSpec(seed=9), NAMES)
    kfold = split_patients(labels, SplitSpec.parse(fractions, folds=5, seed=9), NAMES)

    assert kfold.test == plain.test
    assert set(kfold.train) == set(plain.train) | set(plain.val)


@pytest.fixture
def kfold_split() -> tuple[Split, dict[str, int]]:
    labels = make_labels(40, 23, 17)
    return split_patients(labels, SplitSpec(0.85, 0.0, 0.15, folds=5, seed=2), NAMES), labels


def test_kfold_folds_are_disjoint_and_cover_the_train_pool(kfold_split):
    split, labels = kfold_split
    assert split.folds is not None
    assert len(split.folds) == 5
    assert split.val == ()

    all_fold_ids = [pid for fold in split.folds for pid in fold]
    assert len(all_fold_ids) == len(set(all_fold_ids))
    assert set(all_fold_ids) == set(split.train)
    assert not set(split.train) & set(split.test)
    assert set(split.train) | set(split.test) == set(labels)


def test_kfold_folds_are_stratified(kfold_split):
    split, labels = kfold_split
    per_fold = [class_counts(fold, labels) for fold in split.folds]
    for label in range(len(NAMES)):
        counts = [c[label] for c in per_fold]
        assert min(counts) >= 1, f"class {label} missing from a fold: {counts}"
        assert max(counts) - min(counts) <= 1


@pytest.mark.parametrize("index", range(5))
def test_fold_gives_disjoint_train_and_val_with_the_same_test(kfold_split, index):
    split, _ = kfold_split
    fold = split.fold(index)

    assert fold.val == split.folds[index]
    assert not set(fold.train) & set(fold.val)
    assert set(fold.train) | set(fold.val) == set(split.train)
    assert fold.test == split.test
    assert fold.test_fingerprint == split.test_fingerprint
    assert fold.folds is None


def test_repeated_kfold_gives_other_stratified_partitions_of_the_same_pool():
    labels = make_labels(40, 23, 17)
    once = split_patients(labels, SplitSpec(0.85, 0.0, 0.15, folds=5, seed=2), NAMES)
    twice = split_patients(labels, SplitSpec(0.85, 0.0, 0.15, folds=5, seed=2, repeats=3), NAMES)
    again = split_patients(labels, SplitSpec(0.85, 0.0, 0.15, folds=5, seed=2, repeats=3), NAMES)
    assert twice == again  # deterministic
    assert (twice.test, twice.train, twice.folds) == (once.test, once.train, once.folds)
    assert len(twice.partitions) == 3 and twice.partitions[0] == once.folds
    assert twice.partitions[1] != twice.partitions[0] != twice.partitions[2]
    for folds in twice.partitions:
        assert sorted(pid for fold in folds for pid in fold) == sorted(twice.train)
        for label in range(len(NAMES)):
            counts = [c[label] for c in (class_counts(fold, labels) for fold in folds)]
            assert min(counts) >= 1 and max(counts) - min(counts) <= 1
    assert not set(twice.train) & set(twice.test)


def test_repeats_need_folds():
    with pytest.raises(ValueError, match="repeats"):
        SplitSpec(repeats=2)


def test_fold_on_a_split_without_folds_raises():
    split = split_patients(make_labels(10, 10, 10), SplitSpec(), NAMES)
    with pytest.raises(ValueError, match="no folds"):
        split.fold(0)


def test_too_small_class_is_named_with_a_working_suggestion():
    labels = make_labels(4, 18, 65)
    with pytest.raises(DataError) as caught:
        split_patients(labels, SplitSpec.parse("70/15/15"), NAMES)

    message = str(caught.value)
    assert len(caught.value.problems) == 1
    assert "Infarction" in message
    assert "Ischemia" not in message and "Normal" not in message
    assert "4 patients" in message
    assert "--split 50/25/25" in message
    assert "--folds" in message


def test_suggested_fractions_fit_a_class_of_four():
    spec = SplitSpec.parse("50/25/25")
    assert feasibility_problems({"Infarction": 4}, spec) == []
    assert spec.allocation(4) == (2, 1, 1)

    labels = make_labels(4, 18, 65)
    split = split_patients(labels, spec, NAMES)
    assert class_counts(split.test, labels)[0] == 1
    assert class_counts(split.val, labels)[0] == 1
    assert class_counts(split.train, labels)[0] == 2


@pytest.mark.parametrize("n", range(3, 40))
def test_every_suggested_split_is_feasible_for_the_class(n):
    """Whatever the message proposes (plain or k-fold) must work for that class size."""
    problems = feasibility_problems({"C": n}, SplitSpec(0.98, 0.01, 0.01))
    assert len(problems) == 1
    suggestions = re.findall(r"--split (\S+?)(?: --folds (\d+))?[,.]", problems[0].message)
    assert suggestions
    for fractions, folds in suggestions:
        spec = SplitSpec.parse(fractions, folds=int(folds) if folds else None)
        assert feasibility_problems({"C": n}, spec) == []


def test_class_without_patients_is_reported():
    problems = feasibility_problems({"Infarction": 0, "Normal": 40}, SplitSpec())
    assert len(problems) == 1
    assert "Infarction" in problems[0].message
    assert "no patients" in problems[0].message


def test_split_reports_a_named_class_that_no_patient_has():
    labels = make_labels(0, 20, 30)
    with pytest.raises(DataError, match="Infarction"):
        split_patients(labels, SplitSpec(), NAMES)


def test_too_many_folds_for_a_class_says_how_many_fit():
    """5 patients at test 25 %: 1 to test, 4 left, so at most 4 folds."""
    spec = SplitSpec(0.75, 0.0, 0.25, folds=5)
    problems = feasibility_problems({"Infarction": 5, "Normal": 40}, spec)
    assert len(problems) == 1
    assert "Infarction" in problems[0].message
    assert "at most 4 folds" in problems[0].message
    assert feasibility_problems({"Infarction": 5}, SplitSpec(0.75, 0.0, 0.25, folds=4)) == []


def test_test_fingerprint_ignores_order_and_changes_with_ids():
    spec = SplitSpec()
    one = Split(spec, train=("x",), val=("y",), test=("a", "b", "c"))
    same = Split(spec, train=("y",), val=("x",), test=("c", "a", "b"))
    other = Split(spec, train=("x",), val=("y",), test=("a", "b", "d"))
    fewer = Split(spec, train=("x",), val=("y",), test=("a", "b"))

    assert one.test_fingerprint == same.test_fingerprint
    assert one.test_fingerprint != other.test_fingerprint
    assert one.test_fingerprint != fewer.test_fingerprint


def test_parse_accepts_percentages_and_fractions_alike():
    expected = SplitSpec(0.7, 0.15, 0.15)
    assert SplitSpec.parse("70/15/15") == expected
    assert SplitSpec.parse("0.7,0.15,0.15") == expected


def test_parse_passes_folds_and_seed_through():
    spec = SplitSpec.parse("85/0/15", folds=5, seed=42)
    assert (spec.folds, spec.seed) == (5, 42)
    assert spec.val == 0


@pytest.mark.parametrize(
    "text",
    ["70/30", "70/15/10/5", "a/b/c", "70/fifteen/15", "", "70/20/20", "0.5,0.2,0.2", "nan/50/50"],
)
def test_parse_rejects_malformed_splits(text):
    with pytest.raises(ValueError):
        SplitSpec.parse(text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"train": 0.85, "val": 0.15, "test": 0.0},
        {"train": 0.85, "val": 0.0, "test": 0.15},
        {"train": 0.7, "val": 0.15, "test": 0.15, "folds": 1},
        {"train": 0.5, "val": 0.2, "test": 0.2},
        {"train": -0.1, "val": 0.6, "test": 0.5},
        {"train": float("nan"), "val": 0.5, "test": 0.5},
    ],
    ids=["no-test", "no-val-without-folds", "one-fold", "sum-below-1", "negative", "nan"],
)
def test_split_spec_rejects_invalid_fractions(kwargs):
    with pytest.raises(ValueError):
        SplitSpec(**kwargs)


def test_split_spec_accepts_no_validation_with_folds():
    assert SplitSpec(0.85, 0.0, 0.15, folds=5).folds == 5


@pytest.mark.parametrize("folds", [None, 3])
def test_to_dict_round_trips_through_json(folds):
    labels = make_labels(20, 20, 20)
    spec = SplitSpec(0.85, 0.0, 0.15, folds=folds) if folds else SplitSpec()
    split = split_patients(labels, spec, NAMES)
    data = split.to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["patients"]["test"] == list(split.test)
    assert data["test_fingerprint"] == split.test_fingerprint
    assert data["folds"] == folds
    if folds:
        assert data["fold_patients"] == [list(f) for f in split.folds]
    else:
        assert data["fold_patients"] is None


@pytest.mark.parametrize("label", [3, -1])
def test_label_outside_the_class_set_is_named(label):
    with pytest.raises(ValueError, match=f"patient 'a' has label {label}"):
        split_patients({"a": label, "b": 0, "c": 1}, SplitSpec(), ["A", "B", "C"])
