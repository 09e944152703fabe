"""Nested cross-validation's outer folds: `NestedPlan`, every outer fold with its inner
folds, and the plan of whole groups (leave one group out, or groups dealt into M outer
folds) with the refusals that say which outer and inner folds the groups allow.

Outer folds of single patients are dealt where the rest of the patient-level dealing is
(`splits`); both give a `NestedPlan`, whose outer fold m is a `Split`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from search.data.group_dealing import (
    Group,
    assign_groups,
    group_counts,
    grouped_folds,
    ids_of,
    keys_holding,
    keys_of,
    largest_first,
)
from search.data.problems import DataError, Problem
from search.data.split_feasibility import nested_suggestion, outer_choices, suggestion
from search.data.split_spec import CANNOT_SPLIT, Split, SplitSpec, plural, quoted

__all__ = ["NestedPlan", "grouped_nested_plan"]


@dataclass(frozen=True)
class NestedPlan:
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


def grouped_nested_plan(
    groups: Sequence[Group], names: list[str], spec: SplitSpec, source: str
) -> NestedPlan:
    """Outer folds of whole groups (one per group, or `outer_folds` dealt), and each
    outer fold's inner folds of whole groups over the rest. The class sizes are checked
    first (`feasibility_problems`), by the caller."""
    problems = _outer_group_problems(groups, names, spec, source)
    if problems:
        raise DataError(problems, summary=CANNOT_SPLIT)
    if spec.outer_groups:
        outer_parts = [[g] for g in groups]
    else:
        m = spec.outer_folds
        assert m and spec.folds
        caps = [len(keys_holding(groups, c)) - spec.folds for c in range(len(names))]
        found = assign_groups(largest_first(groups, spec.seed), [1 / m] * m, [1] * m, caps)
        if found is None:
            message = (
                f"found no way to deal the {len(groups)} groups of column "
                f"'{spec.group_by}' ({quoted(keys_of(groups))}) into {m} outer folds that "
                f"each hold every class and leave every class in {spec.folds} groups to "
                f"train on. Use fewer outer folds (--outer-folds) or inner folds (--folds)."
            )
            raise DataError([Problem(source, message, field=spec.group_by)], summary=CANNOT_SPLIT)
        outer_parts = found
    inner = []
    problems = []
    for m, part in enumerate(outer_parts):
        held_out = {g.key for g in part}
        rest = [g for g in groups if g.key not in held_out]
        where = f"the rest of outer fold {m} ({spec.group_by} {quoted(keys_of(part))} held out)"
        try:
            inner.append(grouped_folds(rest, names, spec, source, where, salt="inner"))
        except DataError as error:
            problems += error.problems
    if problems:
        raise DataError(problems, summary=CANNOT_SPLIT)
    return NestedPlan(
        spec=spec,
        outer=tuple(ids_of(part) for part in outer_parts),
        outer_keys=tuple(keys_of(part) for part in outer_parts),
        inner=tuple(inner),
    )


def _outer_group_problems(
    groups: Sequence[Group], names: list[str], spec: SplitSpec, source: str
) -> list[Problem]:
    """Why whole groups cannot make the outer folds, each holding every class, with the
    inner folds left every class in enough groups (necessary conditions)."""
    assert spec.folds
    col, k = spec.group_by, spec.folds
    keys = keys_of(groups)
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
        text = f"column '{col}' has {plural(n, 'group')} ({quoted(keys)}): {reason}"
        fix = nested_suggestion(group_counts(groups, names), m, k, "groups")
        return [Problem(source, f"{text}. {fix}", field=col)]
    problems = []
    for c, name in enumerate(names):
        holding = keys_holding(groups, c)
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
            f"class '{name}' has patients in {h} of the {plural(n, 'group')} of column "
            f"'{col}' ({quoted(holding)}): {reason}"
        )
        fix = nested_suggestion(group_counts(groups, names), m, k, "groups")
        problems.append(Problem(source, f"{text}. {fix}", field=col))
    return problems


def _leave_one_out_problems(
    groups: Sequence[Group], names: list[str], spec: SplitSpec, source: str
) -> list[Problem]:
    assert spec.folds
    col, k = spec.group_by, spec.folds
    n = len(groups)
    if n - 1 < k:
        text = (
            f"column '{col}' has {plural(n, 'group')} ({quoted(keys_of(groups))}): with one "
            f"held out (leave-one-{col}-out), {n - 1} remain, fewer than the {k} inner folds"
        )
        fix = f"Use --folds {n - 1}." if n - 1 >= 2 else "Group by a column with more values."
        return [Problem(source, f"{text}. {fix}", field=col)]
    problems = []
    for c, name in enumerate(names):
        holding = keys_holding(groups, c)
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
                + f" {quoted(missing)} (column "
                f"'{col}'): held out (leave-one-{col}-out), "
                + ("it tests" if len(missing) == 1 else "each tests")
                + f" no {name} patient"
            )
            outers = outer_choices(group_counts(groups, names), k)
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
                f"class '{name}' has patients in {h} of the {plural(n, 'group')} of column "
                f"'{col}' ({quoted(holding)}): with one of them held out, {h - 1} remain, "
                f"fewer than the {k} inner folds"
            )
            fix = f"Use --folds {h - 1}." if h - 1 >= 2 else suggestion(0)
            problems.append(Problem(source, f"{text}. {fix}", field=col))
    return problems
