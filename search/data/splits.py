"""Stratified, patient-level, seeded splits: train / validation / test, or k folds;
optionally keeping groups of patients (a site, say) whole, and optionally nested in
outer folds (nested cross-validation).

Each class's patients are ordered by a seeded hash of their id, and the test split is
taken first from that order. So for a fixed seed and data set the test split never
changes: not with row order, not with the validation fraction, not between train/val
and k-fold use; and adding patients moves few others between splits.

Grouped splits (`SplitSpec.group_by`, the values given to `split_patients` as
`groups`) keep every group whole in every part: the test split, train / validation,
each fold of each repeat, each outer fold. Groups are dealt in the manner of
scikit-learn's StratifiedGroupKFold: one at a time, largest first (ties in a seeded
order), each to the part whose class proportions it evens out most, relative to the
part's share.
Unlike that greedy, a group never goes where it would leave a class unable to reach a
part that still lacks it: the dealing backtracks instead, and a structure that cannot
give every part every class is refused with what would work. The test split is chosen
first (test against the rest, a whole-group share of `test`), so it changes with neither
the validation fraction nor the number of folds unless those forbid its groups (the rest
must still hold every class in enough groups); with groups of distinct sizes the seed
changes little, since the split follows from the group structure.

Outer folds (`SplitSpec.outer_folds`, or one per group with `outer_groups`) deal every
patient into exactly one of M outer folds; a split's test is outer fold `outer` and its
inner folds are dealt over every other patient, as a plain k-fold split deals its rest.

This module holds the entry points and the patient-level dealing; `split_spec` the spec
and the split, `split_feasibility` the refusals from class sizes, `group_dealing` the
dealing of whole groups, and `outer_folds` the outer folds of whole groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from search.data.group_dealing import group_patients, grouped_split
from search.data.outer_folds import NestedPlan, grouped_nested_plan
from search.data.problems import DataError, Problem
from search.data.split_feasibility import class_counts, feasibility_problems
from search.data.split_spec import CANNOT_SPLIT, Split, SplitSpec, order_key, quoted

__all__ = [
    "Split",
    "SplitSpec",
    "feasibility_problems",
    "outer_fold_count",
    "outer_partition",
    "split_patients",
    "split_problems",
]


def split_patients(
    labels: Mapping[str, int],
    spec: SplitSpec,
    class_names: Sequence[str] | None = None,
    groups: Mapping[str, str] | None = None,
) -> Split:
    """Split patients (id -> class index) by `spec`.

    Args:
        groups: patient id -> value of the column `spec.group_by` (required with it, and
            ignored without it); every group stays whole in every part of the split.

    Raises:
        ValueError: `spec.group_by` is set and `groups` is missing or lacks patients;
            the outer fold is beyond the number of groups (leave one group out).
        DataError: a class is too small, or the groups too few or too lopsided, for the
            split; the message says why and suggests what fits.
    """
    names, by_class = _by_class(labels, class_names)
    if not spec.nested and not spec.group_by:
        problems = feasibility_problems(class_counts(names, by_class), spec)
        if problems:
            raise DataError(problems, summary=CANNOT_SPLIT)
        return _stratified_split(by_class, spec)
    group_of = _required_groups(labels, spec, groups)
    if spec.nested:
        plan = _nested_plan(names, by_class, spec, group_of, "split")
        return plan.split(spec.outer)
    return grouped_split(names, by_class, spec, group_of, "split")


def outer_partition(
    labels: Mapping[str, int],
    spec: SplitSpec,
    class_names: Sequence[str] | None = None,
    groups: Mapping[str, str] | None = None,
) -> tuple[tuple[str, ...], ...]:
    """The M outer folds of `spec` (sorted ids each): every patient in exactly one, and
    outer fold m is the test of `split_patients` with `replace(spec, outer=m)`. With one
    outer fold per group they come in sorted order of the group value; with a number of
    outer folds in the order they were dealt (without groups the first class's first
    patient in the seeded order opens fold 0; with groups the largest group is in fold
    0). Refuses what `split_patients` refuses, for any outer fold, so a nested run is
    refused before its first outer fold rather than at a later one."""
    if not spec.nested:
        raise ValueError("this split has no outer folds (--outer-folds)")
    names, by_class = _by_class(labels, class_names)
    group_of = _required_groups(labels, spec, groups)
    return _nested_plan(names, by_class, spec, group_of, "split").outer


def outer_fold_count(
    spec: SplitSpec,
    groups: Mapping[str, str] | None = None,
    labels: Mapping[str, int] | None = None,
) -> int | None:
    """How many outer folds `spec` makes: None without outer folds, `outer_folds` when
    set, and with one outer fold per group the number of distinct non-empty values in
    `groups` (of the patients in `labels`, when given)."""
    if not spec.nested:
        return None
    if spec.outer_folds is not None:
        return spec.outer_folds
    if groups is None:
        raise ValueError(
            f"one outer fold per value of column '{spec.group_by}': "
            "the number of outer folds needs the values"
        )
    ids = labels.keys() if labels is not None else groups.keys()
    return len({groups[pid] for pid in ids if pid in groups and str(groups[pid]).strip()})


def split_problems(
    labels: Mapping[str, int],
    spec: SplitSpec,
    class_names: Sequence[str] | None = None,
    groups: Mapping[str, str] | None = None,
    source: str = "split",
) -> list[Problem]:
    """Every reason `split_patients` would refuse this data (class sizes, and with
    `group_by` the group structure, for every outer fold), as problems of `source`;
    patients without a group value are a problem too. Empty when it splits."""
    names, by_class = _by_class(labels, class_names)
    if not spec.nested and not spec.group_by:
        return feasibility_problems(class_counts(names, by_class), spec, source)
    if spec.group_by:
        if groups is None:
            _required_groups(labels, spec, groups)  # raises: a caller's mistake
        missing = _missing_groups(labels, groups or {})
        if missing:
            return [Problem(source, _missing_message(spec, missing), field=spec.group_by)]
    group_of = dict(groups) if spec.group_by and groups is not None else None
    try:
        if spec.nested:
            _nested_plan(names, by_class, spec, group_of, source)
        else:
            grouped_split(names, by_class, spec, group_of, source)
    except DataError as error:
        return list(error.problems)
    return []


# --- without groups or outer folds: the split as it always was ------------------------


def _stratified_split(by_class: dict[int, list[str]], spec: SplitSpec) -> Split:
    train, val, test, rests = [], [], [], []
    for ids in by_class.values():
        ordered = sorted(ids, key=lambda pid: order_key(spec.seed, pid))
        _, n_val, n_test = spec.allocation(len(ordered))
        test += ordered[:n_test]
        val += ordered[n_test : n_test + n_val]
        rests.append(ordered[n_test + n_val :])
        train += rests[-1]
    partitions = tuple(_deal(rests, spec, r) for r in range(spec.repeats)) if spec.folds else ()
    return Split(
        spec=spec,
        train=tuple(sorted(train)),
        val=tuple(sorted(val)),
        test=tuple(sorted(test)),
        folds=partitions[0] if partitions else None,
        repeated_folds=partitions if spec.repeats > 1 else None,
    )


def _deal(rests: list[list[str]], spec: SplitSpec, repeat: int) -> tuple[tuple[str, ...], ...]:
    """Repeat `repeat`'s folds: each class's remaining patients dealt round the folds in
    turn (so every fold gets its share of every class), the dealing running on from one
    class to the next (so folds differ in size by at most one). Repeat 0 deals in the
    split's own order; later repeats in an order seeded by the repeat."""
    assert spec.folds
    folds: list[list[str]] = [[] for _ in range(spec.folds)]
    dealt = 0
    for rest in rests:
        if repeat:
            rest = sorted(rest, key=lambda pid: order_key(spec.seed, f"{pid}\x00{repeat}"))
        for pid in rest:
            folds[dealt % spec.folds].append(pid)
            dealt += 1
    return tuple(tuple(sorted(f)) for f in folds)


# --- classes and groups of the input --------------------------------------------------


def _by_class(
    labels: Mapping[str, int], class_names: Sequence[str] | None
) -> tuple[list[str], dict[int, list[str]]]:
    n_classes = max(labels.values(), default=-1) + 1
    names = list(class_names) if class_names else [str(i) for i in range(n_classes)]
    by_class: dict[int, list[str]] = {i: [] for i in range(len(names))}
    for pid, label in labels.items():
        if label not in by_class:
            raise ValueError(
                f"patient {pid!r} has label {label}, not a class index 0-{len(names) - 1}"
            )
        by_class[label].append(pid)
    return names, by_class


def _missing_groups(labels: Mapping[str, int], groups: Mapping[str, str]) -> list[str]:
    return sorted(pid for pid in labels if not str(groups.get(pid, "") or "").strip())


def _missing_message(spec: SplitSpec, missing: list[str]) -> str:
    return (
        f"{len(missing)} patient(s) have no value in column '{spec.group_by}' "
        f"({quoted(missing)}): a split by {spec.group_by} needs every patient's value "
        "to keep each group whole"
    )


def _required_groups(
    labels: Mapping[str, int], spec: SplitSpec, groups: Mapping[str, str] | None
) -> dict[str, str] | None:
    """Patient id -> group value for the patients of `labels`; None without group_by."""
    if not spec.group_by:
        return None
    if groups is None:
        raise ValueError(
            f"the split keeps groups of column '{spec.group_by}' whole, but no "
            f"'{spec.group_by}' values were given (groups=...)"
        )
    missing = _missing_groups(labels, groups)
    if missing:
        raise ValueError(_missing_message(spec, missing))
    return {pid: str(groups[pid]) for pid in labels}


# --- outer folds ----------------------------------------------------------------------


def _nested_plan(
    names: list[str],
    by_class: dict[int, list[str]],
    spec: SplitSpec,
    group_of: Mapping[str, str] | None,
    source: str,
) -> NestedPlan:
    """Every outer fold of `spec`, once the class sizes allow them: of single patients,
    or with `group_of` of whole groups."""
    problems = feasibility_problems(class_counts(names, by_class), spec, source)
    if problems:
        raise DataError(problems, summary=CANNOT_SPLIT)
    if group_of is None:
        return _patient_nested_plan(by_class, spec)
    return grouped_nested_plan(group_patients(by_class, group_of), names, spec, source)


def _patient_nested_plan(by_class: dict[int, list[str]], spec: SplitSpec) -> NestedPlan:
    """Outer folds of single patients: each class dealt round the outer folds in its
    seeded order (running on from class to class, as `_deal` deals folds); the inner
    folds deal each class's rest in a second seeded order."""
    m = spec.outer_folds
    assert m
    outer: list[list[str]] = [[] for _ in range(m)]
    dealt = 0
    for ids in by_class.values():
        for pid in sorted(ids, key=lambda pid: order_key(spec.seed, pid)):
            outer[dealt % m].append(pid)
            dealt += 1
    folds = tuple(tuple(sorted(fold)) for fold in outer)
    inner = []
    for fold in folds:
        held_out = set(fold)
        rests = [
            sorted(
                (pid for pid in ids if pid not in held_out),
                key=lambda pid: order_key(spec.seed, f"{pid}\x00inner"),
            )
            for ids in by_class.values()
        ]
        inner.append(tuple(_deal(rests, spec, r) for r in range(spec.repeats)))
    return NestedPlan(spec=spec, outer=folds, outer_keys=None, inner=tuple(inner))
