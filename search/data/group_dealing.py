"""Dealing whole groups of patients (the values of the `group_by` column: sites,
scanners) into parts that each hold every class: the test split against the rest,
train / validation, and the k folds of each repeat; with the refusals, naming the
column, groups and class, that say what would work.

`assign_groups` is the dealing: largest group first, each to the part whose class
proportions it evens out most, backtracking rather than leave a part without a class.
The outer folds of nested cross-validation (`outer_folds`) deal with it too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from search.data.problems import DataError, Problem
from search.data.split_feasibility import class_counts, feasibility_problems
from search.data.split_spec import CANNOT_SPLIT, Split, SplitSpec, order_key, plural, quoted

__all__ = [
    "Group",
    "assign_groups",
    "group_counts",
    "group_patients",
    "grouped_folds",
    "grouped_split",
    "ids_of",
    "keys_holding",
    "keys_of",
    "largest_first",
]

_SEARCH_LIMIT = 20_000  # assignments tried while dealing groups before giving up
_REPEAT_TRIES = 50  # seeded orders tried for each further repeat of grouped folds


@dataclass(frozen=True)
class Group:
    """A group of patients (one value of the `group_by` column) and its class counts."""

    key: str
    ids: tuple[str, ...]
    counts: tuple[int, ...]


def group_patients(by_class: dict[int, list[str]], group_of: Mapping[str, str]) -> list[Group]:
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
        result.append(Group(key, tuple(sorted(members[key])), tuple(counts)))
    return result


def largest_first(groups: Sequence[Group], seed: int, salt: str = "") -> list[Group]:
    """The order of dealing: largest group first, ties in a seeded order."""
    return sorted(groups, key=lambda g: (-len(g.ids), order_key(seed, f"{salt}\x00{g.key}")))


def _shuffled(groups: Sequence[Group], seed: int, salt: str) -> list[Group]:
    return sorted(groups, key=lambda g: order_key(seed, f"{salt}\x00{g.key}"))


def assign_groups(
    groups: Sequence[Group],
    weights: Sequence[float],
    needs: Sequence[int],
    caps: Sequence[int] | None = None,
) -> list[list[Group]] | None:
    """Deal `groups`, in their order, into parts of shares `weights` so that part p holds,
    of every class present, patients from at least `needs[p]` groups (and at most
    `caps[c]` groups holding class c): each group goes to the part whose class
    proportions, relative to its share, it evens out most (ties: the part least filled,
    then the first), unless that leaves a class unable to reach every part that needs
    it; then the dealing backtracks. None when no such dealing is found."""
    dealing = _Dealing(groups, weights, needs, caps)
    if not dealing.feasible(0):
        return None
    n = len(groups)
    choice = [0] * n
    options: list[list[int]] = []
    i = tried = 0
    while i < n:
        if len(options) == i:
            options.append(dealing.ranked(i))
        while options[i]:
            p = options[i].pop(0)
            tried += 1
            if tried > _SEARCH_LIMIT:
                return None
            dealing.move(i, p, 1)
            if dealing.feasible(i + 1):
                choice[i] = p
                i += 1
                break
            dealing.move(i, p, -1)
        else:
            options.pop()
            i -= 1
            if i < 0:
                return None
            dealing.move(i, choice[i], -1)
    parts: list[list[Group]] = [[] for _ in weights]
    for i, p in enumerate(choice):
        parts[p].append(groups[i])
    return parts


class _Dealing:
    """The state of a dealing in progress: each part's patients and groups per class, and
    what the groups not yet dealt still hold."""

    def __init__(self, groups, weights, needs, caps) -> None:
        self.groups, self.weights, self.needs, self.caps = groups, weights, needs, caps
        k, n = len(weights), len(groups)
        n_classes = len(groups[0].counts) if groups else 0
        self.totals = [sum(g.counts[c] for g in groups) for c in range(n_classes)]
        self.present = [c for c in range(n_classes) if self.totals[c]]
        left = [[0] * n_classes for _ in range(n + 1)]  # groups holding c from index i on
        for i in range(n - 1, -1, -1):
            left[i] = [left[i + 1][c] + (groups[i].counts[c] > 0) for c in range(n_classes)]
        self.left = left
        self.fill = [[0] * n_classes for _ in range(k)]
        self.held = [[0] * n_classes for _ in range(k)]
        self.sizes = [0] * k

    def move(self, i: int, p: int, sign: int) -> None:
        """Group i into part p (sign 1) or out of it (sign -1)."""
        for c in self.present:
            self.fill[p][c] += sign * self.groups[i].counts[c]
            self.held[p][c] += sign * (self.groups[i].counts[c] > 0)
        self.sizes[p] += sign * len(self.groups[i].ids)

    def feasible(self, i: int) -> bool:
        """Whether the groups from i on can still give every part the groups it needs."""
        k = len(self.weights)
        for c in self.present:
            if sum(max(0, self.needs[p] - self.held[p][c]) for p in range(k)) > self.left[i][c]:
                return False
            if self.caps is not None and any(self.held[p][c] > self.caps[c] for p in range(k)):
                return False
        return True

    def spread(self) -> float:
        """How unevenly the classes are spread over the parts, relative to their shares."""
        k, total = len(self.weights), 0.0
        for c in self.present:
            ratios = [self.fill[p][c] / (self.weights[p] * self.totals[c]) for p in range(k)]
            mean = sum(ratios) / k
            total += math.sqrt(sum((r - mean) ** 2 for r in ratios) / k)
        return total

    def ranked(self, i: int) -> list[int]:
        """The parts for group i, best first: least spread, then least filled, then first."""
        scored = []
        for p in range(len(self.weights)):
            self.move(i, p, 1)
            scored.append((round(self.spread(), 9), round(self.sizes[p] / self.weights[p], 9), p))
            self.move(i, p, -1)
        return [p for *_, p in sorted(scored)]


def ids_of(groups: Sequence[Group]) -> tuple[str, ...]:
    """The sorted patient ids of the groups."""
    return tuple(sorted(pid for g in groups for pid in g.ids))


def keys_of(groups: Sequence[Group]) -> tuple[str, ...]:
    """The sorted values of the groups."""
    return tuple(sorted(g.key for g in groups))


def keys_holding(groups: Sequence[Group], c: int) -> list[str]:
    """The values of the groups that hold patients of class c."""
    return [g.key for g in groups if g.counts[c]]


def group_counts(groups: Sequence[Group], names: list[str]) -> list[int]:
    """The number of groups, and of groups holding each class."""
    return [len(groups)] + [len(keys_holding(groups, c)) for c in range(len(names))]


def grouped_folds(
    groups: Sequence[Group],
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
        raise DataError(problems, summary=CANNOT_SPLIT)
    partitions: list[tuple[tuple[str, ...], ...]] = []
    seen: set[frozenset[frozenset[str]]] = set()
    for repeat in range(spec.repeats):
        for attempt in range(_REPEAT_TRIES if repeat else 1):
            if repeat:
                order = _shuffled(groups, spec.seed, f"{salt}\x00{repeat}\x00{attempt}")
            else:
                order = largest_first(groups, spec.seed, salt)
            parts = assign_groups(order, [1 / k] * k, [1] * k)
            if parts is None:
                if repeat:
                    continue
                fix = f" Use fewer folds (--folds {k - 1})." if k > 2 else ""
                message = (
                    f"found no way to deal the {len(groups)} groups of column '{col}' in "
                    f"{where} ({quoted(keys_of(groups))}) into {k} folds that each hold "
                    f"every class.{fix}"
                )
                raise DataError([Problem(source, message, field=col)], summary=CANNOT_SPLIT)
            shape = frozenset(frozenset(g.key for g in part) for part in parts)
            if shape not in seen:
                seen.add(shape)
                partitions.append(tuple(ids_of(part) for part in parts))
                break
        else:
            message = (
                f"the {len(groups)} groups of column '{col}' in {where} "
                f"({quoted(keys_of(groups))}) gave only {len(partitions)} different "
                f"{k}-fold partition(s) holding every class in every fold "
                f"({_REPEAT_TRIES} seeded tries for repeat {repeat + 1}), fewer than the "
                f"{spec.repeats} repeats. Use --repeats {len(partitions)}, or fewer folds."
            )
            raise DataError([Problem(source, message, field=col)], summary=CANNOT_SPLIT)
    return tuple(partitions)


def _too_few_groups(
    groups: Sequence[Group],
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
            f"column '{col}' has {plural(len(groups), 'group')} ({quoted(keys_of(groups))}): "
            f"kept whole, they cannot fill {parts}, which takes {k} groups"
        )
        return [Problem(source, f"{text}. {_fewer_folds(len(groups), spare)}", field=col)]
    problems = []
    for c, name in enumerate(names):
        holding = keys_holding(groups, c)
        if len(holding) < k:
            text = (
                f"class '{name}' has patients in {len(holding)} of the "
                f"{plural(len(groups), 'group')} of column '{col}' ({quoted(holding)}): "
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


def grouped_split(
    names: list[str],
    by_class: dict[int, list[str]],
    spec: SplitSpec,
    group_of: Mapping[str, str],
    source: str,
) -> Split:
    """Test split, then train / validation or folds, every group whole."""
    problems = feasibility_problems(class_counts(names, by_class), spec, source)
    if problems:
        raise DataError(problems, summary=CANNOT_SPLIT)
    col = spec.group_by
    groups = group_patients(by_class, group_of)
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
        raise DataError(problems, summary=CANNOT_SPLIT)
    first = assign_groups(
        largest_first(groups, spec.seed), [1 - spec.test, spec.test], [rest_need, 1]
    )
    if first is None:
        message = (
            f"found no way to choose whole groups of column '{col}' "
            f"({quoted(keys_of(groups))}) for a test split that holds every class while the "
            f"rest fills {rest_parts} that each hold every class. "
            + ("Use fewer folds (--folds), or " if spec.folds else "Use --folds, or ")
            + "split without --group-by."
        )
        raise DataError([Problem(source, message, field=col)], summary=CANNOT_SPLIT)
    rest, test = first
    if spec.folds:
        partitions = grouped_folds(rest, names, spec, source, "train + validation")
        return Split(
            spec=spec,
            train=ids_of(rest),
            val=(),
            test=ids_of(test),
            folds=partitions[0],
            repeated_folds=partitions if spec.repeats > 1 else None,
            test_groups=keys_of(test),
        )
    share = spec.train + spec.val
    second = assign_groups(
        largest_first(rest, spec.seed), [spec.train / share, spec.val / share], [1, 1]
    )
    if second is None:
        message = (
            f"found no way to deal the groups of column '{col}' left after the test split "
            f"({quoted(keys_of(rest))}) into training and validation that each hold every "
            "class. Use --folds, or split without --group-by."
        )
        raise DataError([Problem(source, message, field=col)], summary=CANNOT_SPLIT)
    train, val = second
    return Split(
        spec=spec,
        train=ids_of(train),
        val=ids_of(val),
        test=ids_of(test),
        test_groups=keys_of(test),
    )
