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
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from search.data.fingerprint import ids_fingerprint
from search.data.problems import DataError, Problem

__all__ = [
    "Split",
    "SplitSpec",
    "feasibility_problems",
    "outer_fold_count",
    "outer_partition",
    "split_patients",
    "split_problems",
]

_EPS = 1e-9
_SUMMARY = "the data set cannot be split"
_SEARCH_LIMIT = 20_000  # assignments tried while dealing groups before giving up
_REPEAT_TRIES = 50  # seeded orders tried for each further repeat of grouped folds


@dataclass(frozen=True)
class SplitSpec:
    """How to split patients.

    Args:
        train, val, test: fractions of each class's patients; they sum to 1.
        folds: when set, stratified k-fold over train + validation (validation is one
            fold in turn) and `train` / `val` only say how much is left for them together.
        repeats: with folds, how many different k-fold partitions (repeated k-fold); the
            first is the same whatever the number of repeats.
        seed: the split's seed; the same seed gives the same split.
        group_by: the manifest metadata column whose values group patients (`site`, say);
            `split_patients` then needs each patient's value (`groups`) and keeps every
            group whole in every part, stratified as far as the groups allow.
        outer_folds: nested cross-validation: every patient is dealt into exactly one of
            this many stratified outer folds (whole groups with `group_by`); the test split
            is outer fold `outer` and the inner `folds` (required) are dealt over the rest.
        outer_groups: nested cross-validation with one outer fold per group value
            (leave one group out; needs `group_by`), the folds in sorted order of the value.
        outer: which outer fold (0-based) is this split's test.

    With outer folds the fractions are not used (the test share is 1/M, whole groups
    permitting): any fractions that are non-negative and sum to 1 are accepted and
    ignored, so the default 70/15/15 needs no change, and a zero test share is allowed.
    """

    train: float = 0.70
    val: float = 0.15
    test: float = 0.15
    folds: int | None = None
    seed: int = 0
    repeats: int = 1
    group_by: str | None = None
    outer_folds: int | None = None
    outer_groups: bool = False
    outer: int = 0

    def __post_init__(self) -> None:
        fractions = (self.train, self.val, self.test)
        if (
            not all(math.isfinite(f) and f >= 0 for f in fractions)
            or abs(sum(fractions) - 1) > 1e-6
        ):
            raise ValueError(
                f"split fractions {self.percentages()} must be non-negative and sum to 100 %"
            )
        if self.group_by is not None and not self.group_by.strip():
            raise ValueError("group_by must name a manifest column, such as --group-by site")
        if self.outer_groups and self.outer_folds is not None:
            raise ValueError(
                "choose either a number of outer folds (--outer-folds) or one outer fold per "
                "group (leave one group out), not both"
            )
        if self.outer_groups and not self.group_by:
            raise ValueError(
                "leave-one-group-out outer folds need the column whose values are the groups "
                "(group_by, such as --group-by site)"
            )
        if self.outer_folds is not None and self.outer_folds < 2:
            raise ValueError(f"outer folds must be at least 2, got {self.outer_folds}")
        if self.nested and not self.folds:
            raise ValueError(
                "outer folds need inner folds over the rest of each outer fold: "
                "add --folds (such as --folds 3)"
            )
        if self.outer < 0 or (not self.nested and self.outer):
            raise ValueError(
                f"outer fold {self.outer}: the outer fold is an index from 0, "
                "and above 0 only with outer folds"
            )
        if self.outer_folds is not None and self.outer >= self.outer_folds:
            raise ValueError(
                f"outer fold {self.outer}: expected 0 to {self.outer_folds - 1} "
                f"with {self.outer_folds} outer folds"
            )
        if not self.nested and self.test <= 0:
            raise ValueError("the test fraction must be above 0: finalists are tested once on it")
        if self.folds is None and (self.train <= 0 or self.val <= 0):
            raise ValueError("train and validation fractions must be above 0 (or use --folds)")
        if self.folds is not None and self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds}")
        if self.repeats < 1 or (self.repeats > 1 and not self.folds):
            raise ValueError(f"repeats must be at least 1, and above 1 only with folds: {self}")

    @classmethod
    def parse(
        cls,
        text: str,
        folds: int | None = None,
        seed: int = 0,
        repeats: int = 1,
        *,
        group_by: str | None = None,
        outer_folds: int | None = None,
        outer_groups: bool = False,
        outer: int = 0,
    ) -> SplitSpec:
        """`70/15/15` (percentages) or `0.7,0.15,0.15` (fractions): train, validation, test."""
        return cls(
            *cls.parse_fractions(text),
            folds=folds,
            seed=seed,
            repeats=repeats,
            group_by=group_by,
            outer_folds=outer_folds,
            outer_groups=outer_groups,
            outer=outer,
        )

    @staticmethod
    def parse_fractions(text: str) -> tuple[float, float, float]:
        """The three fractions of a `70/15/15` or `0.7,0.15,0.15` text, summing to 1."""
        parts = [p for p in re.split(r"[/,:\s]+", text.strip()) if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 3:
            raise ValueError(
                f"split {text!r}: expected train/validation/test such as 70/15/15 or 0.7,0.15,0.15"
            )
        if sum(values) > 1 + 1e-6:
            values = [v / 100 for v in values]
        if not all(math.isfinite(v) and v >= 0 for v in values) or abs(sum(values) - 1) > 1e-6:
            raise ValueError(f"split {text!r}: the shares must be non-negative and sum to 100")
        return values[0], values[1], values[2]

    @property
    def nested(self) -> bool:
        """True with outer folds (a number of them, or one per group)."""
        return self.outer_folds is not None or self.outer_groups

    @property
    def outer_count(self) -> int | None:
        """The number of outer folds when the spec alone says it (`outer_folds`); None
        without outer folds and with one per group (see `outer_fold_count`)."""
        return self.outer_folds

    def percentages(self) -> str:
        return "/".join(f"{100 * f:g}" for f in (self.train, self.val, self.test))

    def short(self) -> str:
        """`70/15/15`, `5-fold (test 15 %)`, `2x5-fold (test 15 %)`, `5-fold by site
        (test 15 %)`, `outer 4-fold x inner 3-fold`, `leave-one-site-out x inner 3-fold`."""
        times = f"{self.repeats}x" if self.repeats > 1 else ""
        by = f" by {self.group_by}" if self.group_by else ""
        if self.nested:
            if self.outer_groups:
                outer = f"leave-one-{self.group_by}-out"
            else:
                outer = f"outer {self.outer_folds}-fold{by}"
            return f"{outer} x inner {times}{self.folds}-fold"
        if self.folds:
            return f"{times}{self.folds}-fold{by} (test {100 * self.test:g} %)"
        return self.percentages() + by

    def describe(self) -> str:
        times = f", repeated {self.repeats} times" if self.repeats > 1 else ""
        whole = f", whole groups of column '{self.group_by}'" if self.group_by else ""
        if self.nested:
            if self.outer_groups:
                outer = (
                    f"leave-one-{self.group_by}-out (one outer fold per value of column "
                    f"'{self.group_by}', in sorted order)"
                )
            else:
                outer = f"stratified outer {self.outer_folds}-fold{whole}"
            return (
                f"test: outer fold {self.outer} (from 0) of {outer}; stratified "
                f"{self.folds}-fold over the other outer folds{times}, seed {self.seed}"
            )
        if self.folds:
            return (
                f"test {100 * self.test:g} %, stratified {self.folds}-fold over "
                f"train + validation{times}{whole}, seed {self.seed}"
            )
        return f"train/validation/test {self.percentages()} %{whole}, seed {self.seed}"

    def allocation(self, n: int) -> tuple[int, int, int]:
        """Patients of a class of size n that go to train, validation, test (without
        groups; with groups these are the targets the dealing aims at)."""
        if self.nested:
            raise ValueError(
                "with outer folds a class's test share is its outer fold's: see outer_partition"
            )
        n_test = math.floor(n * self.test + 0.5)
        n_val = 0 if self.folds else math.floor(n * self.val + 0.5)
        return n - n_test - n_val, n_val, n_test


@dataclass(frozen=True)
class Split:
    """Patient ids per split. With k folds, `train` holds train + validation, `val` is
    empty and `folds` holds each fold's validation ids; `fold(i)` gives fold i's split.
    With repeated k-fold, `repeated_folds[r]` is repeat r's folds (`folds` is repeat 0's).
    With outer folds, `test` is outer fold `spec.outer` of `outer_count`, and `train`
    every other patient. With groups, `test_groups` are the test's group values."""

    spec: SplitSpec
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    folds: tuple[tuple[str, ...], ...] | None = None
    repeated_folds: tuple[tuple[tuple[str, ...], ...], ...] | None = None
    test_groups: tuple[str, ...] | None = None
    outer_count: int | None = None

    @property
    def partitions(self) -> tuple[tuple[tuple[str, ...], ...], ...]:
        """Every repeat's folds (validation ids of fold k of repeat r at [r][k])."""
        if self.repeated_folds:
            return self.repeated_folds
        return (self.folds,) if self.folds else ()

    @property
    def test_fingerprint(self) -> str:
        """SHA-256 over the test ids: later steps compare it to prove the test set held."""
        return ids_fingerprint(self.test)

    def fold(self, index: int) -> Split:
        """Train and validation of fold `index` (0-based); the test split is unchanged."""
        if not self.folds:
            raise ValueError("this split has no folds")
        if not 0 <= index < len(self.folds):
            raise ValueError(f"fold {index}: expected 0 to {len(self.folds) - 1}")
        held_out = set(self.folds[index])
        train = tuple(p for p in self.train if p not in held_out)
        return replace(self, train=train, val=self.folds[index], folds=None, repeated_folds=None)

    def to_dict(self) -> dict[str, object]:
        return {
            "seed": self.spec.seed,
            "fractions": {"train": self.spec.train, "val": self.spec.val, "test": self.spec.test},
            "folds": self.spec.folds,
            "test_fingerprint": self.test_fingerprint,
            "patients": {
                "train": list(self.train),
                "val": list(self.val),
                "test": list(self.test),
            },
            "fold_patients": [list(f) for f in self.folds] if self.folds else None,
            "repeats": self.spec.repeats,
            "repeated_fold_patients": (
                [[list(f) for f in folds] for folds in self.partitions]
                if self.spec.repeats > 1
                else None
            ),
            "group_by": self.spec.group_by,
            "outer_folds": self.spec.outer_folds,
            "outer_groups": self.spec.outer_groups,
            "outer": self.spec.outer if self.spec.nested else None,
            "outer_fold_count": self.outer_count,
            "test_groups": list(self.test_groups) if self.test_groups is not None else None,
        }


def feasibility_problems(
    counts: Mapping[str, int], spec: SplitSpec, source: str = "split"
) -> list[Problem]:
    """Problems for classes too small to fill every split of `spec`, with what would work.

    From class sizes alone: with `group_by` these are necessary, not sufficient (see
    `split_problems`, which also reads the groups). With one outer fold per group the
    number of outer folds is unknown here; only the inner folds are checked."""
    if spec.nested:
        return _nested_count_problems(counts, spec, source)
    if spec.group_by:
        return _grouped_count_problems(counts, spec, source)
    problems = []
    for name, n in counts.items():
        n_train = spec.allocation(n)[0]
        if n == 0:
            reason = "has no patients: a stratified split needs at least one in every split"
        elif n * spec.test < 1 - _EPS or (not spec.folds and n * spec.val < 1 - _EPS):
            short = [f"{100 * f:g} % of {n} is {n * f:.2g} patients" for f in _thin(spec, n)]
            reason = f"has {n} patients, too few for a stratified {spec.short()} split: "
            reason += "; ".join(short) + ", less than one"
        elif spec.folds and n_train < spec.folds:
            reason = (
                f"has {n} patients, too few for a stratified {spec.short()} split: "
                f"{n_train} remain after the test split, fewer than the {spec.folds} folds"
            )
            if n_train >= 2:
                problems.append(
                    Problem(source, f"class '{name}' {reason}. Use at most {n_train} folds.")
                )
                continue
        elif n_train < 1:
            reason = f"has {n} patients, too few for a {spec.short()} split: none left to train on"
        else:
            continue
        problems.append(Problem(source, f"class '{name}' {reason}. {_suggestion(n)}"))
    return problems


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
        problems = feasibility_problems(_counts(names, by_class), spec)
        if problems:
            raise DataError(problems, summary=_SUMMARY)
        return _stratified_split(by_class, spec)
    group_of = _required_groups(labels, spec, groups)
    if spec.nested:
        plan = _nested_plan(names, by_class, spec, group_of, "split")
        return plan.split(spec.outer)
    return _grouped_split(names, by_class, spec, group_of, "split")


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
        return feasibility_problems(_counts(names, by_class), spec, source)
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
            _grouped_split(names, by_class, spec, group_of, source)
    except DataError as error:
        return list(error.problems)
    return []


# --- without groups or outer folds: the split as it always was ------------------------


def _stratified_split(by_class: dict[int, list[str]], spec: SplitSpec) -> Split:
    train, val, test, rests = [], [], [], []
    for ids in by_class.values():
        ordered = sorted(ids, key=lambda pid: _order_key(spec.seed, pid))
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
            rest = sorted(rest, key=lambda pid: _order_key(spec.seed, f"{pid}\x00{repeat}"))
        for pid in rest:
            folds[dealt % spec.folds].append(pid)
            dealt += 1
    return tuple(tuple(sorted(f)) for f in folds)


def _order_key(seed: int, patient_id: str) -> str:
    return hashlib.sha256(f"{seed}\x00{patient_id}".encode()).hexdigest()


def _thin(spec: SplitSpec, n: int) -> list[float]:
    parts = [spec.test] if spec.folds else [spec.val, spec.test]
    return sorted({f for f in parts if n * f < 1 - _EPS})


def _suggestion(n: int) -> str:
    """Fractions and folds that would give a class of n patients one per split."""
    if n < 3:
        return "Collect more patients of this class or merge it with another."
    share = math.ceil(100 / n / 5) * 5  # smallest 5 % step that holds one patient
    if share > 33:
        share = math.ceil(100 / n)
    left = n - math.floor(n * share / 100 + 0.5)
    text = f"Use larger shares, such as --split {100 - 2 * share}/{share}/{share}"
    if left >= 2:
        text += (
            f", or stratified k-fold over train + validation, such as "
            f"--split {100 - share}/0/{share} --folds {min(left, 5)}"
        )
    return text + "."


# --- shared helpers -------------------------------------------------------------------


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


def _counts(names: list[str], by_class: dict[int, list[str]]) -> dict[str, int]:
    return {names[i]: len(ids) for i, ids in by_class.items()}


def _missing_groups(labels: Mapping[str, int], groups: Mapping[str, str]) -> list[str]:
    return sorted(pid for pid in labels if not str(groups.get(pid, "") or "").strip())


def _missing_message(spec: SplitSpec, missing: list[str]) -> str:
    return (
        f"{len(missing)} patient(s) have no value in column '{spec.group_by}' "
        f"({_quoted(missing)}): a split by {spec.group_by} needs every patient's value "
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


def _quoted(values: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(f"'{v}'" for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# --- groups ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    """A group of patients (one value of the `group_by` column) and its class counts."""

    key: str
    ids: tuple[str, ...]
    counts: tuple[int, ...]


def _groups(by_class: dict[int, list[str]], group_of: Mapping[str, str]) -> list[_Group]:
    """The groups of the patients, in sorted order of value."""
    members: dict[str, list[str]] = {}
    label_of = {pid: label for label, ids in by_class.items() for pid in ids}
    for pid in label_of:
        members.setdefault(group_of[pid], []).append(pid)
    n_classes = len(by_class)
    result = []
    for key in sorted(members):
        counts = [0] * n_classes
        for pid in members[key]:
            counts[label_of[pid]] += 1
        result.append(_Group(key, tuple(sorted(members[key])), tuple(counts)))
    return result


def _largest_first(groups: Sequence[_Group], seed: int, salt: str = "") -> list[_Group]:
    return sorted(groups, key=lambda g: (-len(g.ids), _order_key(seed, f"{salt}\x00{g.key}")))


def _shuffled(groups: Sequence[_Group], seed: int, salt: str) -> list[_Group]:
    return sorted(groups, key=lambda g: _order_key(seed, f"{salt}\x00{g.key}"))


def _assign(
    groups: Sequence[_Group],
    weights: Sequence[float],
    needs: Sequence[int],
    caps: Sequence[int] | None = None,
) -> list[list[_Group]] | None:
    """Deal `groups`, in their order, into parts of shares `weights` so that part p holds,
    of every class present, patients from at least `needs[p]` groups (and at most
    `caps[c]` groups holding class c): each group goes to the part whose class
    proportions, relative to its share, it evens out most (ties: the part least filled,
    then the first), unless that leaves a class unable to reach every part that needs
    it; then the dealing backtracks. None when no such dealing is found."""
    k, n = len(weights), len(groups)
    n_classes = len(groups[0].counts) if groups else 0
    totals = [sum(g.counts[c] for g in groups) for c in range(n_classes)]
    present = [c for c in range(n_classes) if totals[c]]
    left = [[0] * n_classes for _ in range(n + 1)]  # groups holding c from index i on
    for i in range(n - 1, -1, -1):
        left[i] = [left[i + 1][c] + (groups[i].counts[c] > 0) for c in range(n_classes)]
    fill = [[0] * n_classes for _ in range(k)]
    held = [[0] * n_classes for _ in range(k)]
    sizes = [0] * k

    def move(i: int, p: int, sign: int) -> None:
        for c in present:
            fill[p][c] += sign * groups[i].counts[c]
            held[p][c] += sign * (groups[i].counts[c] > 0)
        sizes[p] += sign * len(groups[i].ids)

    def feasible(i: int) -> bool:
        for c in present:
            if sum(max(0, needs[p] - held[p][c]) for p in range(k)) > left[i][c]:
                return False
            if caps is not None and any(held[p][c] > caps[c] for p in range(k)):
                return False
        return True

    def spread() -> float:
        total = 0.0
        for c in present:
            ratios = [fill[p][c] / (weights[p] * totals[c]) for p in range(k)]
            mean = sum(ratios) / k
            total += math.sqrt(sum((r - mean) ** 2 for r in ratios) / k)
        return total

    def ranked(i: int) -> list[int]:
        scored = []
        for p in range(k):
            move(i, p, 1)
            scored.append((round(spread(), 9), round(sizes[p] / weights[p], 9), p))
            move(i, p, -1)
        return [p for *_, p in sorted(scored)]

    if not feasible(0):
        return None
    choice = [0] * n
    options: list[list[int]] = []
    i = tried = 0
    while i < n:
        if len(options) == i:
            options.append(ranked(i))
        while options[i]:
            p = options[i].pop(0)
            tried += 1
            if tried > _SEARCH_LIMIT:
                return None
            move(i, p, 1)
            if feasible(i + 1):
                choice[i] = p
                i += 1
                break
            move(i, p, -1)
        else:
            options.pop()
            i -= 1
            if i < 0:
                return None
            move(i, choice[i], -1)
    parts: list[list[_Group]] = [[] for _ in range(k)]
    for i, p in enumerate(choice):
        parts[p].append(groups[i])
    return parts


def _ids(groups: Sequence[_Group]) -> tuple[str, ...]:
    return tuple(sorted(pid for g in groups for pid in g.ids))


def _keys(groups: Sequence[_Group]) -> tuple[str, ...]:
    return tuple(sorted(g.key for g in groups))


def _holding(groups: Sequence[_Group], c: int) -> list[str]:
    return [g.key for g in groups if g.counts[c]]


def _group_counts(groups: Sequence[_Group], names: list[str]) -> list[int]:
    """The number of groups, and of groups holding each class."""
    return [len(groups)] + [len(_holding(groups, c)) for c in range(len(names))]


def _grouped_folds(
    groups: Sequence[_Group],
    names: list[str],
    spec: SplitSpec,
    source: str,
    where: str,
    salt: str = "",
) -> tuple[tuple[tuple[str, ...], ...], ...]:
    """Every repeat's folds over `groups`, each fold holding every class. Repeat 0 deals
    the groups largest first; later repeats in seeded orders, the first that gives a
    partition no earlier repeat gave. `where` names the groups in messages."""
    assert spec.folds
    col, k = spec.group_by, spec.folds
    problems = _too_few_groups(groups, names, spec, k, f"the {k} folds of {where}", source, 0)
    if problems:
        raise DataError(problems, summary=_SUMMARY)
    partitions: list[tuple[tuple[str, ...], ...]] = []
    seen: set[frozenset[frozenset[str]]] = set()
    for repeat in range(spec.repeats):
        for attempt in range(_REPEAT_TRIES if repeat else 1):
            if repeat:
                order = _shuffled(groups, spec.seed, f"{salt}\x00{repeat}\x00{attempt}")
            else:
                order = _largest_first(groups, spec.seed, salt)
            parts = _assign(order, [1 / k] * k, [1] * k)
            if parts is None:
                if repeat:
                    continue
                fix = f" Use fewer folds (--folds {k - 1})." if k > 2 else ""
                message = (
                    f"found no way to deal the {len(groups)} groups of column '{col}' in "
                    f"{where} ({_quoted(_keys(groups))}) into {k} folds that each hold "
                    f"every class.{fix}"
                )
                raise DataError([Problem(source, message, field=col)], summary=_SUMMARY)
            shape = frozenset(frozenset(g.key for g in part) for part in parts)
            if shape not in seen:
                seen.add(shape)
                partitions.append(tuple(_ids(part) for part in parts))
                break
        else:
            message = (
                f"the {len(groups)} groups of column '{col}' in {where} "
                f"({_quoted(_keys(groups))}) gave only {len(partitions)} different "
                f"{k}-fold partition(s) holding every class in every fold "
                f"({_REPEAT_TRIES} seeded tries for repeat {repeat + 1}), fewer than the "
                f"{spec.repeats} repeats. Use --repeats {len(partitions)}, or fewer folds."
            )
            raise DataError([Problem(source, message, field=col)], summary=_SUMMARY)
    return tuple(partitions)


def _too_few_groups(
    groups: Sequence[_Group],
    names: list[str],
    spec: SplitSpec,
    k: int,
    parts: str,
    source: str,
    spare: int | None,
) -> list[Problem]:
    """Problems when fewer than k groups (in all, or holding a class) are to fill k
    parts that each need every class; `spare` of the k parts are not folds (None: no
    number of folds would help)."""
    col = spec.group_by
    if len(groups) < k:
        text = (
            f"column '{col}' has {_plural(len(groups), 'group')} ({_quoted(_keys(groups))}): "
            f"kept whole, they cannot fill {parts}, which takes {k} groups"
        )
        return [Problem(source, f"{text}. {_fewer_folds(len(groups), spare)}", field=col)]
    problems = []
    for c, name in enumerate(names):
        holding = _holding(groups, c)
        if len(holding) < k:
            text = (
                f"class '{name}' has patients in {len(holding)} of the "
                f"{_plural(len(groups), 'group')} of column '{col}' ({_quoted(holding)}): "
                f"kept whole, they cannot give {name} patients to {parts}, which takes "
                f"{k} groups that hold it"
            )
            fix = _fewer_folds(len(holding), spare, name)
            problems.append(Problem(source, f"{text}. {fix}", field=col))
    return problems


def _fewer_folds(available: int, spare: int | None, name: str | None = None) -> str:
    """At most the folds that `available` groups fill besides `spare` other parts, or
    what else would help."""
    if spare is not None and available - spare >= 2:
        return f"Use at most {available - spare} folds (--folds {available - spare})."
    who = f"{name} patients" if name else "patients"
    return f"Collect {who} from more groups, or split without --group-by."


def _grouped_split(
    names: list[str],
    by_class: dict[int, list[str]],
    spec: SplitSpec,
    group_of: Mapping[str, str],
    source: str,
) -> Split:
    """Test split, then train / validation or folds, every group whole."""
    problems = feasibility_problems(_counts(names, by_class), spec, source)
    if problems:
        raise DataError(problems, summary=_SUMMARY)
    col = spec.group_by
    groups = _groups(by_class, group_of)
    rest_need = spec.folds or 2
    rest_parts = f"{spec.folds} folds" if spec.folds else "training and validation"
    parts = (
        f"the test split and {rest_parts}"
        if spec.folds
        else "the training, validation and test splits"
    )
    spare = 1 if spec.folds else None
    problems = _too_few_groups(groups, names, spec, rest_need + 1, parts, source, spare)
    if problems:
        raise DataError(problems, summary=_SUMMARY)
    first = _assign(_largest_first(groups, spec.seed), [1 - spec.test, spec.test], [rest_need, 1])
    if first is None:
        message = (
            f"found no way to choose whole groups of column '{col}' "
            f"({_quoted(_keys(groups))}) for a test split that holds every class while the "
            f"rest fills {rest_parts} that each hold every class. "
            + ("Use fewer folds (--folds), or " if spec.folds else "Use --folds, or ")
            + "split without --group-by."
        )
        raise DataError([Problem(source, message, field=col)], summary=_SUMMARY)
    rest, test = first
    if spec.folds:
        partitions = _grouped_folds(rest, names, spec, source, "train + validation")
        return Split(
            spec=spec,
            train=_ids(rest),
            val=(),
            test=_ids(test),
            folds=partitions[0],
            repeated_folds=partitions if spec.repeats > 1 else None,
            test_groups=_keys(test),
        )
    share = spec.train + spec.val
    second = _assign(
        _largest_first(rest, spec.seed), [spec.train / share, spec.val / share], [1, 1]
    )
    if second is None:
        message = (
            f"found no way to deal the groups of column '{col}' left after the test split "
            f"({_quoted(_keys(rest))}) into training and validation that each hold every "
            "class. Use --folds, or split without --group-by."
        )
        raise DataError([Problem(source, message, field=col)], summary=_SUMMARY)
    train, val = second
    return Split(
        spec=spec, train=_ids(train), val=_ids(val), test=_ids(test), test_groups=_keys(test)
    )


# --- outer folds ----------------------------------------------------------------------


@dataclass(frozen=True)
class _NestedPlan:
    """Every outer fold of a nested spec, with each fold's inner partitions."""

    spec: SplitSpec
    outer: tuple[tuple[str, ...], ...]
    outer_keys: tuple[tuple[str, ...], ...] | None
    inner: tuple[tuple[tuple[tuple[str, ...], ...], ...], ...]  # [m][repeat][fold]

    def split(self, m: int) -> Split:
        if not 0 <= m < len(self.outer):
            per_group = (
                f", one per value of column '{self.spec.group_by}'"
                if self.spec.outer_groups
                else ""
            )
            raise ValueError(
                f"outer fold {m}: expected 0 to {len(self.outer) - 1} "
                f"({len(self.outer)} outer folds{per_group})"
            )
        held_out = set(self.outer[m])
        train = tuple(sorted(pid for fold in self.outer for pid in fold if pid not in held_out))
        partitions = self.inner[m]
        return Split(
            spec=self.spec,
            train=train,
            val=(),
            test=self.outer[m],
            folds=partitions[0],
            repeated_folds=partitions if self.spec.repeats > 1 else None,
            test_groups=self.outer_keys[m] if self.outer_keys is not None else None,
            outer_count=len(self.outer),
        )


def _nested_plan(
    names: list[str],
    by_class: dict[int, list[str]],
    spec: SplitSpec,
    group_of: Mapping[str, str] | None,
    source: str,
) -> _NestedPlan:
    problems = feasibility_problems(_counts(names, by_class), spec, source)
    if problems:
        raise DataError(problems, summary=_SUMMARY)
    if group_of is None:
        return _patient_nested_plan(by_class, spec)
    groups = _groups(by_class, group_of)
    problems = _outer_group_problems(groups, names, spec, source)
    if problems:
        raise DataError(problems, summary=_SUMMARY)
    if spec.outer_groups:
        outer_parts = [[g] for g in groups]
    else:
        m = spec.outer_folds
        assert m and spec.folds
        caps = [len(_holding(groups, c)) - spec.folds for c in range(len(names))]
        found = _assign(_largest_first(groups, spec.seed), [1 / m] * m, [1] * m, caps)
        if found is None:
            message = (
                f"found no way to deal the {len(groups)} groups of column "
                f"'{spec.group_by}' ({_quoted(_keys(groups))}) into {m} outer folds that "
                f"each hold every class and leave every class in {spec.folds} groups to "
                f"train on. Use fewer outer folds (--outer-folds) or inner folds (--folds)."
            )
            raise DataError([Problem(source, message, field=spec.group_by)], summary=_SUMMARY)
        outer_parts = found
    inner = []
    problems = []
    for m, part in enumerate(outer_parts):
        held_out = {g.key for g in part}
        rest = [g for g in groups if g.key not in held_out]
        where = f"the rest of outer fold {m} ({spec.group_by} {_quoted(_keys(part))} held out)"
        try:
            inner.append(_grouped_folds(rest, names, spec, source, where, salt="inner"))
        except DataError as error:
            problems += error.problems
    if problems:
        raise DataError(problems, summary=_SUMMARY)
    return _NestedPlan(
        spec=spec,
        outer=tuple(_ids(part) for part in outer_parts),
        outer_keys=tuple(_keys(part) for part in outer_parts),
        inner=tuple(inner),
    )


def _patient_nested_plan(by_class: dict[int, list[str]], spec: SplitSpec) -> _NestedPlan:
    """Outer folds of single patients: each class dealt round the outer folds in its
    seeded order (running on from class to class, as `_deal` deals folds); the inner
    folds deal each class's rest in a second seeded order."""
    m = spec.outer_folds
    assert m
    outer: list[list[str]] = [[] for _ in range(m)]
    dealt = 0
    for ids in by_class.values():
        for pid in sorted(ids, key=lambda pid: _order_key(spec.seed, pid)):
            outer[dealt % m].append(pid)
            dealt += 1
    folds = tuple(tuple(sorted(fold)) for fold in outer)
    inner = []
    for fold in folds:
        held_out = set(fold)
        rests = [
            sorted(
                (pid for pid in ids if pid not in held_out),
                key=lambda pid: _order_key(spec.seed, f"{pid}\x00inner"),
            )
            for ids in by_class.values()
        ]
        inner.append(tuple(_deal(rests, spec, r) for r in range(spec.repeats)))
    return _NestedPlan(spec=spec, outer=folds, outer_keys=None, inner=tuple(inner))


def _grouped_count_problems(
    counts: Mapping[str, int], spec: SplitSpec, source: str
) -> list[Problem]:
    """Whole groups decide the shares, so only what no grouping can fill: a part of its
    own (the test split, and each fold or training and validation) per patient at most."""
    parts = (spec.folds or 2) + 1
    problems = []
    for name, n in counts.items():
        if n == 0:
            reason = "has no patients: a stratified split needs at least one in every split"
        elif n < parts:
            needing = (
                f"the test split and the {spec.folds} folds"
                if spec.folds
                else "the training, validation and test splits"
            )
            reason = (
                f"has {n} patients, too few for a stratified {spec.short()} split: "
                f"{needing} need one each"
            )
            if spec.folds and n - 1 >= 2:
                problems.append(
                    Problem(source, f"class '{name}' {reason}. Use at most {n - 1} folds.")
                )
                continue
        else:
            continue
        problems.append(Problem(source, f"class '{name}' {reason}. {_suggestion(0)}"))
    return problems


def _nested_count_problems(
    counts: Mapping[str, int], spec: SplitSpec, source: str
) -> list[Problem]:
    assert spec.folds
    k = spec.folds
    problems = []
    for name, n in counts.items():
        if n == 0:
            reason = "has no patients: a stratified split needs at least one in every split"
            problems.append(Problem(source, f"class '{name}' {reason}. {_suggestion(n)}"))
            continue
        if spec.outer_folds is None:  # one per group: the groups decide
            if n - 1 < k:
                reason = (
                    f"has {n} patients, too few for {spec.short()}: the held-out "
                    f"{spec.group_by}'s test needs one, leaving at most {n - 1} for the "
                    f"{k} inner folds"
                )
                fix = f"Use --folds {n - 1}." if n - 1 >= 2 else _suggestion(0)
                problems.append(Problem(source, f"class '{name}' {reason}. {fix}"))
            continue
        m = spec.outer_folds
        left = n - math.ceil(n / m)
        if n < m:
            reason = (
                f"has {n} patients, too few for a stratified {spec.short()} split: "
                f"fewer than the {m} outer folds, each of whose tests needs one"
            )
        elif left < k:
            reason = (
                f"has {n} patients, too few for a stratified {spec.short()} split: "
                f"an outer fold holds {math.ceil(n / m)} of them and leaves {left} to train "
                f"on, fewer than the {k} inner folds"
            )
        else:
            continue
        fix = _nested_suggestion(list(counts.values()), m, k, "patients")
        problems.append(Problem(source, f"class '{name}' {reason}. {fix}"))
    return problems


def _inner_room(ns: Sequence[int], outer: int) -> int:
    """Patients (or groups) of the thinnest class left to train on beside the outer fold
    that takes the most of it; 0 when a class has fewer than `outer`."""
    if not ns or any(n < outer for n in ns):
        return 0
    return min(n - math.ceil(n / outer) for n in ns)


def _outer_choices(ns: Sequence[int], k: int) -> list[int]:
    """Numbers of outer folds that every count in `ns` fills, leaving k for inner folds."""
    return [o for o in range(2, min(ns, default=0) + 1) if _inner_room(ns, o) >= k]


def _nested_suggestion(ns: Sequence[int], m: int, k: int, unit: str) -> str:
    """Outer and inner folds that every class fills (`ns`: its patients, or the groups
    holding it): each outer fold one at least, and beside the outer fold that takes the
    most, enough left for each inner fold. Exact for patients; for groups necessary."""
    ns = [n for n in ns if n > 0]
    options = []
    room = _inner_room(ns, m)
    if 2 <= room < k:
        options.append(f"--folds {room}")
    outers = _outer_choices(ns, k)
    if outers:
        options.append(f"--outer-folds {min(outers, key=lambda o: (abs(o - m), o))}")
    if not options:
        pairs = [(o, _inner_room(ns, o)) for o in range(2, min(ns, default=0) + 1)]
        pairs = [(o, i) for o, i in pairs if i >= 2]
        if pairs:
            o, i = max(pairs, key=lambda pair: (pair[1], -abs(pair[0] - m)))
            options.append(f"--outer-folds {o} --folds {i}")
    if not options:
        return f"Collect more {unit} of the thinnest classes, or merge classes."
    return "Use " + ", or ".join(options) + "."


def _outer_group_problems(
    groups: Sequence[_Group], names: list[str], spec: SplitSpec, source: str
) -> list[Problem]:
    """Why whole groups cannot make the outer folds, each holding every class, with the
    inner folds left every class in enough groups (necessary conditions)."""
    assert spec.folds
    col, k = spec.group_by, spec.folds
    keys = _keys(groups)
    if spec.outer_groups:
        return _leave_one_out_problems(groups, names, spec, source)
    m = spec.outer_folds
    assert m
    n = len(groups)
    if n < m or n - math.ceil(n / m) < k:
        reason = (
            f"kept whole, they cannot make {m} outer folds"
            if n < m
            else f"kept whole, an outer fold holds {math.ceil(n / m)} or more of them and "
            f"leaves at most {n - math.ceil(n / m)} to train on, fewer than the {k} inner folds"
        )
        text = f"column '{col}' has {_plural(n, 'group')} ({_quoted(keys)}): {reason}"
        fix = _nested_suggestion(_group_counts(groups, names), m, k, "groups")
        return [Problem(source, f"{text}. {fix}", field=col)]
    problems = []
    for c, name in enumerate(names):
        holding = _holding(groups, c)
        h = len(holding)
        if h < m:
            reason = f"kept whole, they cannot put {name} patients in each of the {m} outer folds"
        elif h - math.ceil(h / m) < k:
            reason = (
                f"kept whole, an outer fold holds {math.ceil(h / m)} or more of them and "
                f"leaves {h - math.ceil(h / m)} to train on, fewer than the {k} inner folds"
            )
        else:
            continue
        text = (
            f"class '{name}' has patients in {h} of the {_plural(n, 'group')} of column "
            f"'{col}' ({_quoted(holding)}): {reason}"
        )
        fix = _nested_suggestion(_group_counts(groups, names), m, k, "groups")
        problems.append(Problem(source, f"{text}. {fix}", field=col))
    return problems


def _leave_one_out_problems(
    groups: Sequence[_Group], names: list[str], spec: SplitSpec, source: str
) -> list[Problem]:
    assert spec.folds
    col, k = spec.group_by, spec.folds
    n = len(groups)
    if n - 1 < k:
        text = (
            f"column '{col}' has {_plural(n, 'group')} ({_quoted(_keys(groups))}): with one "
            f"held out (leave-one-{col}-out), {n - 1} remain, fewer than the {k} inner folds"
        )
        fix = f"Use --folds {n - 1}." if n - 1 >= 2 else "Group by a column with more values."
        return [Problem(source, f"{text}. {fix}", field=col)]
    problems = []
    for c, name in enumerate(names):
        holding = _holding(groups, c)
        h = len(holding)
        if h == 1:
            text = (
                f"class '{name}' is only in {col} '{holding[0]}' (column '{col}'): held out "
                f"(leave-one-{col}-out), it leaves no {name} patient to train on, and no "
                f"other {col} can test {name}"
            )
            fix = (
                f"Collect {name} patients at other {col}s, merge the class with another, "
                f"or use outer folds without --group-by (--outer-folds)."
            )
            problems.append(Problem(source, f"{text}. {fix}", field=col))
            continue
        if h < n:
            missing = [g.key for g in groups if not g.counts[c]]
            text = (
                f"class '{name}' has no patients at {col}"
                + ("" if len(missing) == 1 else "s")
                + f" {_quoted(missing)} (column "
                f"'{col}'): held out (leave-one-{col}-out), "
                + ("it tests" if len(missing) == 1 else "each tests")
                + f" no {name} patient"
            )
            outers = _outer_choices(_group_counts(groups, names), k)
            pool = (
                f"Use --outer-folds {max(outers)} instead of leaving one {col} out, to pool "
                f"{col}s into outer folds that each hold every class, or merge "
                if outers
                else "Merge "
            )
            fix = f"{pool}{col}s without {name} patients with others."
            problems.append(Problem(source, f"{text}. {fix}", field=col))
        if h - 1 < k:
            text = (
                f"class '{name}' has patients in {h} of the {_plural(n, 'group')} of column "
                f"'{col}' ({_quoted(holding)}): with one of them held out, {h - 1} remain, "
                f"fewer than the {k} inner folds"
            )
            fix = f"Use --folds {h - 1}." if h - 1 >= 2 else _suggestion(0)
            problems.append(Problem(source, f"{text}. {fix}", field=col))
    return problems
