"""Stratified, patient-level, seeded splits: train / validation / test, or k folds.

Each class's patients are ordered by a seeded hash of their id, and the test split is
taken first from that order. So for a fixed seed and data set the test split never
changes: not with row order, not with the validation fraction, not between train/val
and k-fold use; and adding patients moves few others between splits.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from search.data.fingerprint import ids_fingerprint
from search.data.problems import DataError, Problem

__all__ = ["Split", "SplitSpec", "feasibility_problems", "split_patients"]

_EPS = 1e-9


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
    """

    train: float = 0.70
    val: float = 0.15
    test: float = 0.15
    folds: int | None = None
    seed: int = 0
    repeats: int = 1

    def __post_init__(self) -> None:
        fractions = (self.train, self.val, self.test)
        if (
            not all(math.isfinite(f) and f >= 0 for f in fractions)
            or abs(sum(fractions) - 1) > 1e-6
        ):
            raise ValueError(
                f"split fractions {self.percentages()} must be non-negative and sum to 100 %"
            )
        if self.test <= 0:
            raise ValueError("the test fraction must be above 0: finalists are tested once on it")
        if self.folds is None and (self.train <= 0 or self.val <= 0):
            raise ValueError("train and validation fractions must be above 0 (or use --folds)")
        if self.folds is not None and self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds}")
        if self.repeats < 1 or (self.repeats > 1 and not self.folds):
            raise ValueError(f"repeats must be at least 1, and above 1 only with folds: {self}")

    @classmethod
    def parse(
        cls, text: str, folds: int | None = None, seed: int = 0, repeats: int = 1
    ) -> SplitSpec:
        """`70/15/15` (percentages) or `0.7,0.15,0.15` (fractions): train, validation, test."""
        return cls(*cls.parse_fractions(text), folds=folds, seed=seed, repeats=repeats)

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

    def percentages(self) -> str:
        return "/".join(f"{100 * f:g}" for f in (self.train, self.val, self.test))

    def short(self) -> str:
        """`70/15/15`, `5-fold (test 15 %)` or `2x5-fold (test 15 %)`."""
        if self.folds:
            times = f"{self.repeats}x" if self.repeats > 1 else ""
            return f"{times}{self.folds}-fold (test {100 * self.test:g} %)"
        return self.percentages()

    def describe(self) -> str:
        if self.folds:
            times = f", repeated {self.repeats} times" if self.repeats > 1 else ""
            return (
                f"test {100 * self.test:g} %, stratified {self.folds}-fold over "
                f"train + validation{times}, seed {self.seed}"
            )
        return f"train/validation/test {self.percentages()} %, seed {self.seed}"

    def allocation(self, n: int) -> tuple[int, int, int]:
        """Patients of a class of size n that go to train, validation, test."""
        n_test = math.floor(n * self.test + 0.5)
        n_val = 0 if self.folds else math.floor(n * self.val + 0.5)
        return n - n_test - n_val, n_val, n_test


@dataclass(frozen=True)
class Split:
    """Patient ids per split. With k folds, `train` holds train + validation, `val` is
    empty and `folds` holds each fold's validation ids; `fold(i)` gives fold i's split.
    With repeated k-fold, `repeated_folds[r]` is repeat r's folds (`folds` is repeat 0's)."""

    spec: SplitSpec
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    folds: tuple[tuple[str, ...], ...] | None = None
    repeated_folds: tuple[tuple[tuple[str, ...], ...], ...] | None = None

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
        }


def feasibility_problems(
    counts: Mapping[str, int], spec: SplitSpec, source: str = "split"
) -> list[Problem]:
    """Problems for classes too small to fill every split of `spec`, with what would work."""
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
    labels: Mapping[str, int], spec: SplitSpec, class_names: Sequence[str] | None = None
) -> Split:
    """Split patients (id -> class index) by `spec`.

    Raises:
        DataError: a class is too small for the split; the message suggests what fits.
    """
    n_classes = max(labels.values(), default=-1) + 1
    names = list(class_names) if class_names else [str(i) for i in range(n_classes)]
    by_class: dict[int, list[str]] = {i: [] for i in range(len(names))}
    for pid, label in labels.items():
        if label not in by_class:
            raise ValueError(
                f"patient {pid!r} has label {label}, not a class index 0-{len(names) - 1}"
            )
        by_class[label].append(pid)
    counts = {names[i]: len(ids) for i, ids in by_class.items()}
    problems = feasibility_problems(counts, spec)
    if problems:
        raise DataError(problems, summary="the data set cannot be split")

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
