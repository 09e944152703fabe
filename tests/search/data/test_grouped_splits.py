"""Grouped splits (whole sites) and outer folds (nested cross-validation)."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import replace

import pytest

from search.data.problems import DataError
from search.data.splits import (
    SplitSpec,
    feasibility_problems,
    outer_fold_count,
    outer_partition,
    split_patients,
    split_problems,
)

NAMES = ("Normal", "Ischemia", "Infarction")
NORMAL, ISCHEMIA, INFARCTION = range(3)


def make_labels(*sizes: int) -> dict[str, int]:
    """Patient id -> class index, `sizes[i]` patients of class i."""
    return {f"c{label}-p{i:03d}": label for label, n in enumerate(sizes) for i in range(n)}


def round_robin_sites(
    labels: dict[str, int], n_sites: int, placed: dict[int, list[int]] | None = None
) -> dict[str, str]:
    """Patient id -> `site-A`, `site-B`, ...: each class's patients dealt round the sites,
    except a class in `placed`, whose i-th patient goes to site `placed[label][i]`."""
    placed = placed or {}
    sites = {}
    for label in sorted(set(labels.values())):
        ids = sorted(pid for pid, lab in labels.items() if lab == label)
        for i, pid in enumerate(ids):
            index = placed[label][i] if label in placed else i % n_sites
            sites[pid] = f"site-{'ABCDEFGHIJKLMNOP'[index]}"
    return sites


def many_sites(seed: int = 3, n_sites: int = 14) -> tuple[dict[str, int], dict[str, str]]:
    """Sites of 6 to 30 patients, every site holding every class."""
    rng = random.Random(seed)
    labels, sites = {}, {}
    for s in range(n_sites):
        size = rng.randint(6, 30)
        for i in range(size):
            pid = f"s{s:02d}-p{i:02d}"
            labels[pid] = i % 3 if i < 3 else rng.choices(range(3), (0.6, 0.3, 0.1))[0]
            sites[pid] = f"site-{s:02d}"
    return labels, sites


def members(sites: dict[str, str]) -> dict[str, set[str]]:
    by_site: dict[str, set[str]] = {}
    for pid, site in sites.items():
        by_site.setdefault(site, set()).add(pid)
    return by_site


def assert_whole(parts, sites: dict[str, str]) -> None:
    """Every site's patients lie in exactly one of `parts` (which cover them all)."""
    placed = {pid: i for i, part in enumerate(parts) for pid in part}
    assert sorted(placed) == sorted(pid for part in parts for pid in part), "overlap"
    for site, ids in members(sites).items():
        where = {placed.get(pid) for pid in ids}
        assert len(where) == 1 and None not in where, f"{site} split over parts {where}"


def class_counts(ids, labels) -> Counter:
    return Counter(labels[pid] for pid in ids)


# --- groups stay whole ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 5])
def test_groups_stay_whole_in_test_and_every_fold_of_every_repeat(seed):
    labels, sites = many_sites()
    spec = SplitSpec(0.85, 0.0, 0.15, folds=4, repeats=3, seed=seed, group_by="site")
    split = split_patients(labels, spec, NAMES, sites)

    assert len(split.partitions) == 3
    for folds in split.partitions:
        assert_whole((split.test, *folds), sites)
        for fold in folds:
            assert all(class_counts(fold, labels)[c] >= 1 for c in range(3))
    assert split.partitions[0] != split.partitions[1] != split.partitions[2]
    assert split.test_groups == tuple(sorted({sites[pid] for pid in split.test}))
    assert all(class_counts(split.test, labels)[c] >= 1 for c in range(3))


def test_grouped_train_validation_test_keeps_groups_whole_near_the_shares():
    labels, sites = many_sites()
    split = split_patients(labels, SplitSpec(group_by="site"), NAMES, sites)

    assert_whole((split.train, split.val, split.test), sites)
    for part in (split.train, split.val, split.test):
        assert all(class_counts(part, labels)[c] >= 1 for c in range(3))
    for part, share in ((split.val, 0.15), (split.test, 0.15)):
        assert abs(len(part) / len(labels) - share) < 0.08


def test_grouped_test_split_does_not_change_with_folds_or_validation_share():
    labels, sites = many_sites()
    tests = {
        split_patients(labels, spec, NAMES, sites).test
        for spec in (
            SplitSpec(group_by="site"),
            SplitSpec(0.65, 0.2, 0.15, group_by="site"),
            SplitSpec(0.85, 0.0, 0.15, folds=3, group_by="site"),
            SplitSpec(0.85, 0.0, 0.15, folds=5, group_by="site"),
        )
    }
    assert len(tests) == 1


def test_first_repeat_of_grouped_folds_ignores_the_number_of_repeats():
    labels, sites = many_sites()
    once = split_patients(labels, SplitSpec(0.85, 0, 0.15, folds=4, group_by="site"), NAMES, sites)
    thrice = split_patients(
        labels, SplitSpec(0.85, 0, 0.15, folds=4, repeats=3, group_by="site"), NAMES, sites
    )
    assert (thrice.test, thrice.train, thrice.folds) == (once.test, once.train, once.folds)


@pytest.mark.parametrize("grouped", [False, True])
def test_groups_stay_whole_in_outer_folds_and_in_each_outer_folds_inner_folds(grouped):
    labels, sites = many_sites()
    spec = SplitSpec(outer_folds=4, folds=3, repeats=2, group_by="site" if grouped else None)
    outer = outer_partition(labels, spec, NAMES, sites)

    assert len(outer) == 4
    if grouped:
        assert_whole(outer, sites)
    for m in range(4):
        split = split_patients(labels, replace(spec, outer=m), NAMES, sites)
        assert split.test == outer[m]
        for folds in split.partitions:
            if grouped:
                assert_whole((split.test, *folds), sites)
            assert sorted(pid for fold in folds for pid in fold) == sorted(split.train)


# --- outer folds ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("group_by", [None, "site"])
def test_every_patient_is_in_exactly_one_outer_fold(seed, group_by):
    labels, sites = many_sites()
    spec = SplitSpec(outer_folds=5, folds=3, seed=seed, group_by=group_by)
    outer = outer_partition(labels, spec, NAMES, sites)

    everyone = [pid for fold in outer for pid in fold]
    assert len(everyone) == len(set(everyone)) == len(labels)
    assert set(everyone) == set(labels)
    assert all(list(fold) == sorted(fold) for fold in outer)


@pytest.mark.parametrize("group_by", [None, "site"])
def test_outer_test_is_disjoint_from_its_train_and_inner_folds(group_by):
    labels, sites = many_sites()
    spec = SplitSpec(outer_folds=4, folds=3, group_by=group_by)
    outer = outer_partition(labels, spec, NAMES, sites)
    fingerprints = set()
    for m in range(4):
        split = split_patients(labels, replace(spec, outer=m), NAMES, sites)
        test = set(split.test)
        assert split.test == outer[m]
        assert not test & set(split.train)
        assert test | set(split.train) == set(labels)
        assert split.val == ()
        assert not any(test & set(fold) for fold in split.folds)
        for index in range(3):
            inner = split.fold(index)
            assert inner.test == split.test and not test & (set(inner.train) | set(inner.val))
        fingerprints.add(split.test_fingerprint)
    assert len(fingerprints) == 4


@pytest.mark.parametrize("group_by", [None, "site"])
def test_nested_split_is_deterministic_and_ignores_input_order(group_by):
    labels, sites = many_sites()
    spec = SplitSpec(outer_folds=4, folds=3, repeats=2, seed=11, outer=2, group_by=group_by)
    items = list(labels.items())
    random.Random(5).shuffle(items)
    shuffled_sites = dict(reversed(list(sites.items())))

    first = split_patients(labels, spec, NAMES, sites)
    assert first == split_patients(dict(labels), spec, NAMES, dict(sites))
    assert first == split_patients(dict(items), spec, NAMES, shuffled_sites)
    assert outer_partition(labels, spec, NAMES, sites) == outer_partition(
        dict(items), spec, NAMES, shuffled_sites
    )


def test_outer_folds_are_stratified_without_groups():
    labels = make_labels(40, 23, 17)
    outer = outer_partition(labels, SplitSpec(outer_folds=5, folds=3, seed=2), NAMES)
    for label in range(3):
        counts = [class_counts(fold, labels)[label] for fold in outer]
        assert min(counts) >= 1 and max(counts) - min(counts) <= 1, counts
    sizes = [len(fold) for fold in outer]
    assert max(sizes) - min(sizes) <= 1


def test_grouped_outer_folds_give_every_class_to_every_fold():
    """Each class is at >= 5 sites (every site holds every class): each outer fold, and
    each inner fold of each outer fold, gets at least one patient of every class."""
    labels, sites = many_sites()
    spec = SplitSpec(outer_folds=5, folds=3, group_by="site")
    for fold in outer_partition(labels, spec, NAMES, sites):
        assert all(class_counts(fold, labels)[c] >= 1 for c in range(3))
    for m in range(5):
        split = split_patients(labels, replace(spec, outer=m), NAMES, sites)
        for fold in split.folds:
            assert all(class_counts(fold, labels)[c] >= 1 for c in range(3))


def test_leave_one_group_out_makes_one_outer_fold_per_group_in_sorted_order():
    labels = make_labels(40, 20, 8)
    letters = round_robin_sites(labels, 4)
    names = {"site-A": "mercy", "site-B": "aalst", "site-C": "zurich", "site-D": "lyon"}
    sites = {pid: names[site] for pid, site in letters.items()}
    spec = SplitSpec(outer_groups=True, folds=3, group_by="hospital")

    outer = outer_partition(labels, spec, NAMES, sites)
    assert outer_fold_count(spec, sites) == 4
    assert [{sites[pid] for pid in fold} for fold in outer] == [
        {"aalst"},
        {"lyon"},
        {"mercy"},
        {"zurich"},
    ]
    for m, hospital in enumerate(["aalst", "lyon", "mercy", "zurich"]):
        split = split_patients(labels, replace(spec, outer=m), NAMES, sites)
        assert split.test == outer[m]
        assert split.test_groups == (hospital,)
        assert split.outer_count == 4
        assert [{sites[pid] for pid in fold} for fold in split.folds].count({hospital}) == 0
    with pytest.raises(ValueError, match="expected 0 to 3"):
        split_patients(labels, replace(spec, outer=4), NAMES, sites)


def test_outer_fold_count():
    labels = make_labels(8, 8, 8)
    sites = round_robin_sites(labels, 4)
    assert outer_fold_count(SplitSpec()) is None
    assert outer_fold_count(SplitSpec(outer_folds=5, folds=3)) == 5
    assert SplitSpec(outer_folds=5, folds=3).outer_count == 5
    logo = SplitSpec(outer_groups=True, folds=2, group_by="site")
    assert logo.outer_count is None
    assert outer_fold_count(logo, sites) == 4
    assert outer_fold_count(logo, {**sites, "stranger": "site-Z"}, labels) == 4
    with pytest.raises(ValueError, match="site"):
        outer_fold_count(logo)


# --- the first seed's shape: 87 patients, 65 / 18 / 4 ---------------------------------


SEED_SHAPE = (65, 18, 4)


def test_seed_shape_outer_4_inner_3_without_groups():
    labels = make_labels(*SEED_SHAPE)
    spec = SplitSpec(outer_folds=4, folds=3)
    assert feasibility_problems(dict(zip(NAMES, SEED_SHAPE, strict=True)), spec) == []
    outer = outer_partition(labels, spec, NAMES)
    assert [class_counts(fold, labels)[INFARCTION] for fold in outer] == [1, 1, 1, 1]
    for m in range(4):
        split = split_patients(labels, replace(spec, outer=m), NAMES)
        assert [class_counts(f, labels)[INFARCTION] for f in split.folds] == [1, 1, 1]
        assert split.to_dict()["outer"] == m


def test_seed_shape_outer_4_by_site_works_with_four_sites_one_infarction_each():
    labels = make_labels(*SEED_SHAPE)
    sites = round_robin_sites(labels, 4, {INFARCTION: [0, 1, 2, 3]})
    spec = SplitSpec(outer_folds=4, folds=3, group_by="site")

    outer = outer_partition(labels, spec, NAMES, sites)
    assert sorted(len({sites[pid] for pid in fold}) for fold in outer) == [1, 1, 1, 1]
    for m in range(4):
        split = split_patients(labels, replace(spec, outer=m), NAMES, sites)
        assert len(split.test_groups) == 1
        assert_whole((split.test, *split.folds), sites)
        for fold in (split.test, *split.folds):
            assert all(class_counts(fold, labels)[c] >= 1 for c in range(3))
    logo = SplitSpec(outer_groups=True, folds=3, group_by="site")
    assert split_problems(labels, logo, NAMES, sites) == []


def test_seed_shape_outer_4_by_site_is_refused_with_three_sites_and_the_fix_works():
    labels = make_labels(*SEED_SHAPE)
    sites = round_robin_sites(labels, 3)
    spec = SplitSpec(outer_folds=4, folds=3, group_by="site")

    with pytest.raises(DataError) as caught:
        split_patients(labels, spec, NAMES, sites)
    message = str(caught.value)
    assert "column 'site' has 3 groups ('site-A', 'site-B', 'site-C')" in message
    assert "cannot make 4 outer folds" in message
    fix = re.search(r"--outer-folds (\d+) --folds (\d+)", message)
    assert fix, message
    fixed = replace(spec, outer_folds=int(fix[1]), folds=int(fix[2]))
    assert split_problems(labels, fixed, NAMES, sites) == []


def test_seed_shape_is_refused_when_infarction_sits_in_three_of_four_sites():
    labels = make_labels(*SEED_SHAPE)
    sites = round_robin_sites(labels, 4, {INFARCTION: [0, 0, 2, 3]})
    spec = SplitSpec(outer_folds=4, folds=3, group_by="site")

    problems = split_problems(labels, spec, NAMES, sites)
    assert len(problems) == 1
    message = problems[0].message
    assert "class 'Infarction'" in message and "column 'site'" in message
    assert "'site-A', 'site-C', 'site-D'" in message
    assert problems[0].field == "site"
    with pytest.raises(DataError, match="Infarction"):
        split_patients(labels, spec, NAMES, sites)
    fix = re.search(r"Use (--outer-folds \d+(?: --folds \d+)?)", message)
    assert fix, message
    numbers = [int(n) for n in re.findall(r"\d+", fix[1])]
    fixed = replace(spec, outer_folds=numbers[0], folds=numbers[1] if len(numbers) > 1 else 3)
    assert split_problems(labels, fixed, NAMES, sites) == []


# --- refusals -------------------------------------------------------------------------


def test_too_few_groups_for_test_and_folds_names_the_column_and_groups():
    labels = make_labels(65, 18, 7)
    sites = round_robin_sites(labels, 3)
    spec = SplitSpec(0.85, 0.0, 0.15, folds=5, group_by="site")

    with pytest.raises(DataError) as caught:
        split_patients(labels, spec, NAMES, sites)
    message = str(caught.value)
    assert "column 'site' has 3 groups ('site-A', 'site-B', 'site-C')" in message
    assert "the test split and 5 folds" in message
    assert "--folds 2" in message
    assert split_problems(labels, replace(spec, folds=2), NAMES, sites) == []


def test_class_in_too_few_groups_for_the_folds_is_named():
    labels = make_labels(60, 30, 8)
    sites = round_robin_sites(labels, 6, {2: [0, 0, 1, 1, 2, 2, 2, 2]})
    problems = split_problems(
        labels, SplitSpec(0.85, 0.0, 0.15, folds=4, group_by="site"), NAMES, sites
    )
    assert len(problems) == 1
    message = problems[0].message
    assert "class 'Infarction' has patients in 3 of the 6 groups of column 'site'" in message
    assert "'site-A', 'site-B', 'site-C'" in message
    assert "--folds 2" in message


def test_leave_one_group_out_refuses_a_class_confined_to_one_group():
    labels = make_labels(40, 20, 6)
    sites = round_robin_sites(labels, 4, {INFARCTION: [1] * 6})
    spec = SplitSpec(outer_groups=True, folds=2, group_by="site")

    with pytest.raises(DataError) as caught:
        split_patients(labels, spec, NAMES, sites)
    problems = caught.value.problems
    assert len(problems) == 1
    message = problems[0].message
    assert "class 'Infarction' is only in site 'site-B'" in message
    assert "no Infarction patient to train on" in message
    assert "--outer-folds" in message


def test_leave_one_group_out_refuses_a_group_without_a_class():
    labels = make_labels(40, 20, 6)
    sites = round_robin_sites(labels, 4, {INFARCTION: [0, 0, 1, 1, 2, 2]})
    problems = split_problems(
        labels, SplitSpec(outer_groups=True, folds=2, group_by="site"), NAMES, sites
    )
    assert len(problems) == 1
    message = problems[0].message
    assert "class 'Infarction' has no patients at site 'site-D'" in message
    assert "--outer-folds 3" in message
    pooled = SplitSpec(outer_folds=3, folds=2, group_by="site")
    assert split_problems(labels, pooled, NAMES, sites) == []


def test_outer_folds_need_inner_folds():
    with pytest.raises(ValueError, match="--folds"):
        SplitSpec(outer_folds=4)
    with pytest.raises(ValueError, match="--folds"):
        SplitSpec(outer_groups=True, group_by="site")
    with pytest.raises(ValueError, match="--folds"):
        SplitSpec.parse("85/0/15", outer_folds=4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"outer_folds": 1, "folds": 3},
        {"outer_groups": True, "folds": 3},
        {"outer_groups": True, "outer_folds": 3, "folds": 3, "group_by": "site"},
        {"outer_folds": 4, "folds": 3, "outer": 4},
        {"outer_folds": 4, "folds": 3, "outer": -1},
        {"folds": 3, "outer": 1},
        {"group_by": " "},
    ],
    ids=[
        "one-outer",
        "logo-ungrouped",
        "both",
        "outer-beyond",
        "outer-negative",
        "no-outer",
        "blank",
    ],
)
def test_split_spec_rejects_inconsistent_outer_settings(kwargs):
    with pytest.raises(ValueError):
        SplitSpec(**kwargs)


def test_nested_specs_ignore_the_fractions():
    """With outer folds the test is an outer fold: any well-formed fractions pass,
    a zero test share included, and make the same split."""
    labels = make_labels(30, 20, 10)
    default = SplitSpec(outer_folds=3, folds=2)
    everything = SplitSpec(1.0, 0.0, 0.0, outer_folds=3, folds=2)
    assert (
        split_patients(labels, default, NAMES).test
        == split_patients(labels, everything, NAMES).test
    )
    with pytest.raises(ValueError, match="outer_partition"):
        default.allocation(10)


def test_grouped_split_needs_every_patients_group():
    labels = make_labels(10, 10, 10)
    sites = round_robin_sites(labels, 4)
    spec = SplitSpec(0.8, 0.0, 0.2, folds=2, group_by="site")
    with pytest.raises(ValueError, match="column 'site'"):
        split_patients(labels, spec, NAMES)
    lacking = {**sites, "c0-p003": "", "c2-p007": "  "}
    del lacking["c1-p001"]
    with pytest.raises(ValueError, match="3 patient") as caught:
        split_patients(labels, spec, NAMES, lacking)
    for pid in ("c0-p003", "c1-p001", "c2-p007"):
        assert pid in str(caught.value)
    problems = split_problems(labels, spec, NAMES, lacking, source="manifest.csv")
    assert len(problems) == 1 and problems[0].source == "manifest.csv"
    assert "c1-p001" in problems[0].message


def test_groups_are_ignored_without_group_by():
    labels = make_labels(65, 18, 7)
    sites = round_robin_sites(labels, 3)
    for spec in (SplitSpec(seed=3), SplitSpec(0.85, 0, 0.15, folds=5, repeats=2)):
        plain = split_patients(labels, spec, NAMES)
        assert split_patients(labels, spec, NAMES, sites) == plain
        assert plain.test_groups is None and plain.outer_count is None


# --- feasibility from class sizes -----------------------------------------------------


def test_class_with_fewer_patients_than_outer_folds_suggests_outer_folds():
    problems = feasibility_problems(
        {"Normal": 65, "Ischemia": 18, "Infarction": 4}, SplitSpec(outer_folds=5, folds=3)
    )
    assert len(problems) == 1
    message = problems[0].message
    assert "class 'Infarction' has 4 patients" in message
    assert "fewer than the 5 outer folds" in message
    assert "--outer-folds 4" in message


def test_class_with_too_few_left_for_inner_folds_suggests_folds_or_outer_folds():
    problems = feasibility_problems(
        {"Normal": 65, "Ischemia": 18, "Infarction": 4}, SplitSpec(outer_folds=2, folds=3)
    )
    assert len(problems) == 1
    message = problems[0].message
    assert "leaves 2 to train on, fewer than the 3 inner folds" in message
    assert "--folds 2" in message and "--outer-folds 4" in message


@pytest.mark.parametrize("n", range(2, 16))
@pytest.mark.parametrize(("outer", "inner"), [(3, 3), (5, 3), (4, 5), (10, 2)])
def test_every_suggested_nested_split_is_feasible(n, outer, inner):
    counts = {"Big": 60, "Small": n}
    spec = SplitSpec(outer_folds=outer, folds=inner)
    problems = feasibility_problems(counts, spec)
    if not problems:
        return
    assert len(problems) == 1
    message = problems[0].message
    suggestions = re.findall(r"(--(?:outer-folds|folds) \d+(?: --folds \d+)?)", message)
    if n < 3:
        assert "Collect more" in message
        return
    assert suggestions, message
    for suggestion in suggestions:
        values = dict(re.findall(r"--([a-z-]+) (\d+)", suggestion))
        fixed = replace(
            spec,
            outer_folds=int(values.get("outer-folds", outer)),
            folds=int(values.get("folds", inner)),
            outer=0,
        )
        assert feasibility_problems(counts, fixed) == [], suggestion
        split_patients(make_labels(60, n), fixed, ["Big", "Small"])


# --- what a split says about itself ---------------------------------------------------


def test_short_and_describe_name_the_nesting():
    assert SplitSpec(outer_folds=4, folds=3).short() == "outer 4-fold x inner 3-fold"
    logo = SplitSpec(outer_groups=True, folds=3, group_by="site")
    assert logo.short() == "leave-one-site-out x inner 3-fold"
    grouped = SplitSpec(outer_folds=4, folds=3, repeats=2, group_by="site")
    assert grouped.short() == "outer 4-fold by site x inner 2x3-fold"
    assert SplitSpec(0.85, 0, 0.15, folds=5, group_by="site").short() == (
        "5-fold by site (test 15 %)"
    )
    described = replace(grouped, outer=2).describe()
    assert "outer fold 2" in described and "site" in described and "3-fold" in described
    assert "leave-one-site-out" in logo.describe()


def test_to_dict_records_groups_and_outer_folds_and_round_trips():
    labels = make_labels(*SEED_SHAPE)
    sites = round_robin_sites(labels, 4, {INFARCTION: [0, 1, 2, 3]})
    spec = SplitSpec(outer_groups=True, folds=3, group_by="site", outer=1)
    split = split_patients(labels, spec, NAMES, sites)
    data = split.to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["group_by"] == "site"
    assert (data["outer_folds"], data["outer_groups"], data["outer"]) == (None, True, 1)
    assert data["outer_fold_count"] == 4
    assert data["test_groups"] == ["site-B"]
    assert data["patients"]["test"] == list(split.test)
    assert data["fold_patients"] == [list(f) for f in split.folds]
    assert data["test_fingerprint"] == split.test_fingerprint

    plain = split_patients(make_labels(20, 20, 20), SplitSpec(), NAMES).to_dict()
    assert plain["group_by"] is None and plain["outer"] is None and plain["test_groups"] is None


def test_many_small_groups_split_fast():
    """150 families of two patients: the dealing is greedy first, no search blow-up."""
    rng = random.Random(4)
    labels = {f"q{i:03d}": rng.choices(range(3), (0.7, 0.2, 0.1))[0] for i in range(300)}
    families = {pid: f"family-{i // 2}" for i, pid in enumerate(sorted(labels))}
    spec = SplitSpec(outer_folds=5, folds=5, repeats=3, group_by="family")
    split = split_patients(labels, spec, NAMES, families)
    assert_whole((split.test, *split.folds), families)
    assert 45 <= len(split.test) <= 75


def test_dealing_never_leaves_a_part_without_a_class():
    """Site C is the best fit for a 15 % test share but holds no Infarction, and the
    sites left for training and validation are two: the test must take C and D."""
    labels, sites = {}, {}
    for site, sizes in {"A": (28, 8, 4), "B": (20, 7, 3), "C": (7, 3, 0), "D": (5, 2, 1)}.items():
        for label, n in enumerate(sizes):
            for i in range(n):
                labels[f"{site}-{label}-{i}"] = label
                sites[f"{site}-{label}-{i}"] = site
    plain = split_patients(labels, SplitSpec(group_by="site"), NAMES, sites)
    kfold = split_patients(labels, SplitSpec(0.85, 0, 0.15, folds=2, group_by="site"), NAMES, sites)

    assert plain.test_groups == kfold.test_groups == ("C", "D")
    for part in (plain.train, plain.val, plain.test, *kfold.folds):
        assert {labels[pid] for pid in part} == {0, 1, 2}
    assert_whole((plain.train, plain.val, plain.test), sites)


@pytest.mark.parametrize("seed", range(6))
def test_grouped_folds_are_balanced_in_size(seed):
    """Largest site first: fold sizes within a quarter of the mean (sites of 6-30)."""
    labels, sites = many_sites(seed)
    split = split_patients(labels, SplitSpec(0.85, 0, 0.15, folds=4, group_by="site"), NAMES, sites)
    outer = outer_partition(
        labels, SplitSpec(outer_folds=4, folds=3, group_by="site"), NAMES, sites
    )
    for parts in (split.folds, outer):
        sizes = [len(part) for part in parts]
        assert max(sizes) - min(sizes) <= 0.25 * sum(sizes) / len(sizes), sizes


def test_grouped_repeats_that_cannot_differ_are_refused():
    """Three training sites make one 3-fold partition only: a second repeat is refused."""
    labels = make_labels(*SEED_SHAPE)
    sites = round_robin_sites(labels, 4, {INFARCTION: [0, 1, 2, 3]})
    spec = SplitSpec(outer_folds=4, folds=3, repeats=2, group_by="site")
    with pytest.raises(DataError, match="--repeats 1") as caught:
        split_patients(labels, spec, NAMES, sites)
    assert "1 different 3-fold partition" in str(caught.value)
    assert split_problems(labels, replace(spec, repeats=1), NAMES, sites) == []
