"""What a split is: `SplitSpec` (how to split: fractions, folds, repeats, groups, outer
folds) and `Split` (the patient ids of each part), with the small helpers every part of
the split code shares: the seeded patient order and the wording of refusals.

Kept apart from the dealing (`splits`, `group_dealing`, `outer_folds`) so that the
checks and the commands that only parse, describe or record a split read one short
module, and every dealing module can import it without importing another.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from search.data.fingerprint import ids_fingerprint

__all__ = [
    "CANNOT_SPLIT",
    "Split",
    "SplitSpec",
    "order_key",
    "plural",
    "quoted",
]

CANNOT_SPLIT = "the data set cannot be split"  # the summary of every refusal to split


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


def order_key(seed: int, patient_id: str) -> str:
    """The sort key of the seeded order: a hash of the seed and an id (a patient's, or a
    group's value, salted)."""
    return hashlib.sha256(f"{seed}\x00{patient_id}".encode()).hexdigest()


def quoted(values: Sequence[str], limit: int = 10) -> str:
    """`'a', 'b', ...` for a message: the first `limit` values, and how many in all."""
    shown = ", ".join(f"'{v}'" for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def plural(n: int, word: str) -> str:
    """`1 group`, `3 groups`."""
    return f"{n} {word}" + ("" if n == 1 else "s")
