"""Whether a split can be made, judged from the class sizes alone, and what would work.

`feasibility_problems` refuses classes too small for a spec before anything is dealt
(the check and the commands call it on a data set's counts); its messages suggest
shares, folds and outer folds that fit. The suggestions are shared with the refusals of
the group dealing (`group_dealing`, `outer_folds`), which come after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from search.data.problems import Problem
from search.data.split_spec import SplitSpec

__all__ = [
    "class_counts",
    "feasibility_problems",
    "nested_suggestion",
    "outer_choices",
    "suggestion",
]

_EPS = 1e-9


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
        problems.append(Problem(source, f"class '{name}' {reason}. {suggestion(n)}"))
    return problems


def class_counts(names: list[str], by_class: dict[int, list[str]]) -> dict[str, int]:
    """Class name -> number of patients, the input of `feasibility_problems`."""
    return {names[i]: len(ids) for i, ids in by_class.items()}


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
        problems.append(Problem(source, f"class '{name}' {reason}. {suggestion(0)}"))
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
            problems.append(Problem(source, f"class '{name}' {reason}. {suggestion(n)}"))
            continue
        if spec.outer_folds is None:  # one per group: the groups decide
            if n - 1 < k:
                reason = (
                    f"has {n} patients, too few for {spec.short()}: the held-out "
                    f"{spec.group_by}'s test needs one, leaving at most {n - 1} for the "
                    f"{k} inner folds"
                )
                fix = f"Use --folds {n - 1}." if n - 1 >= 2 else suggestion(0)
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
        fix = nested_suggestion(list(counts.values()), m, k, "patients")
        problems.append(Problem(source, f"class '{name}' {reason}. {fix}"))
    return problems


def _thin(spec: SplitSpec, n: int) -> list[float]:
    parts = [spec.test] if spec.folds else [spec.val, spec.test]
    return sorted({f for f in parts if n * f < 1 - _EPS})


def suggestion(n: int) -> str:
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


def _inner_room(ns: Sequence[int], outer: int) -> int:
    """Patients (or groups) of the thinnest class left to train on beside the outer fold
    that takes the most of it; 0 when a class has fewer than `outer`."""
    if not ns or any(n < outer for n in ns):
        return 0
    return min(n - math.ceil(n / outer) for n in ns)


def outer_choices(ns: Sequence[int], k: int) -> list[int]:
    """Numbers of outer folds that every count in `ns` fills, leaving k for inner folds."""
    return [o for o in range(2, min(ns, default=0) + 1) if _inner_room(ns, o) >= k]


def nested_suggestion(ns: Sequence[int], m: int, k: int, unit: str) -> str:
    """Outer and inner folds that every class fills (`ns`: its patients, or the groups
    holding it): each outer fold one at least, and beside the outer fold that takes the
    most, enough left for each inner fold. Exact for patients; for groups necessary."""
    ns = [n for n in ns if n > 0]
    options = []
    room = _inner_room(ns, m)
    if 2 <= room < k:
        options.append(f"--folds {room}")
    outers = outer_choices(ns, k)
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
