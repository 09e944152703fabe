"""What a trial trains and validates on: one split (`TrialData`) or k folds over the same
patients (`FoldedData`), both seen by the protocol as a `TrainingPool`: every patient's
maps once, and for each fold model the rows it trains on and the rows it is validated on.
The maps are held once, so the frozen work (the backbone below the cut) is done once for
every fold model."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from trainables.frozen_store import tensor_digest

__all__ = ["UNSEEN", "Fold", "FoldedData", "TrainingPool", "TrialData"]

UNSEEN = -1  # the fold (and label) of a pool patient no fold model may read


@dataclass(frozen=True)
class Fold:
    """One fold model's part of the pool: pool rows to train on and to validate on."""

    repeat: int
    index: int
    train_rows: torch.Tensor
    val_rows: torch.Tensor


@dataclass(frozen=True)
class TrainingPool:
    """x (N, views, 3, H, W) float and y (N,) of every patient the trial may read, their
    ids, and the folds: one for a single split, R x K for repeated k-fold."""

    x: torch.Tensor
    y: torch.Tensor
    ids: tuple[str, ...]
    folds: tuple[Fold, ...]
    class_names: tuple[str, ...]

    @property
    def cross_validated(self) -> bool:
        return len(self.folds) > 1

    @cached_property
    def digests(self) -> tuple[str, ...]:
        """SHA-256 of each view's maps, part of the name of their frozen work."""
        return tuple(tensor_digest(self.x[:, v]) for v in range(self.x.shape[1]))


@dataclass(frozen=True)
class TrialData:
    """One split: normalized maps as tensors, x (N, views, 3, H, W) float and y (N,) class
    index, for training and for validation; ids name the patients (optional)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    class_names: tuple[str, ...]
    train_ids: tuple[str, ...] = ()
    val_ids: tuple[str, ...] = ()

    @cached_property
    def pool(self) -> TrainingPool:
        """Train then validation maps as one pool with one fold. Made once; a copy pickled
        after that (to a Ray worker) carries it, and its digests once computed."""
        n_train, n_val = len(self.train_y), len(self.val_y)
        ids = self.train_ids + self.val_ids
        if len(ids) != n_train + n_val:  # unnamed: numbered as they come
            ids = tuple(f"train-{i}" for i in range(n_train)) + tuple(
                f"val-{i}" for i in range(n_val)
            )
        rows = torch.arange(n_train + n_val)
        fold = Fold(0, 0, rows[:n_train], rows[n_train:])
        return TrainingPool(
            torch.cat([self.train_x, self.val_x]),
            torch.cat([self.train_y, self.val_y]),
            ids,
            (fold,),
            self.class_names,
        )


@dataclass(frozen=True)
class FoldedData:
    """k-fold cross-validation over one set of patients: x and y as in `TrialData`, and
    `assignment` (repeats, N), the fold that validates each patient in each repeat.

    A patient assigned -1 (`UNSEEN`) is in no fold: no fold model trains or validates on
    it, and its label is -1. Nested cross-validation holds its outer test patients so:
    their maps stay in the pool (the frozen work over every patient is then the same for
    every outer fold, done once), their labels never reach the trial."""

    x: torch.Tensor
    y: torch.Tensor
    ids: tuple[str, ...]
    assignment: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.assignment.ndim != 2 or self.assignment.shape[1] != len(self.y):
            raise ValueError(
                f"fold assignment of shape {self.assignment.shape}: expected (repeats, "
                f"{len(self.y)})"
            )

    def everyone(self) -> FoldedData:
        """The same patients as one fold that trains and validates on all of them, for a
        refit whose epochs are already chosen (the protocol's `keep_last`): the maps held
        and their frozen work done once, not once as training and again as validation.
        `UNSEEN` patients stay unseen: a nested run's refit never reads its outer fold."""
        one_fold = np.where(self.assignment[:1] == UNSEEN, UNSEEN, 0)
        return _AllPatients(self.x, self.y, self.ids, one_fold, self.class_names)

    @property
    def repeats(self) -> int:
        return self.assignment.shape[0]

    @property
    def k(self) -> int:
        return int(self.assignment.max()) + 1

    @cached_property
    def pool(self) -> TrainingPool:
        """The maps as they are, with one fold per repeat and fold index. Made once."""
        folds = []
        for repeat, assigned in enumerate(self.assignment):
            for index in range(self.k):
                held_out = torch.from_numpy(assigned == index)
                seen = torch.from_numpy(assigned != UNSEEN)
                folds.append(
                    Fold(
                        repeat,
                        index,
                        torch.nonzero(seen & ~held_out).flatten(),
                        torch.nonzero(held_out).flatten(),
                    )
                )
        return TrainingPool(self.x, self.y, self.ids, tuple(folds), self.class_names)


class _AllPatients(FoldedData):
    @cached_property
    def pool(self) -> TrainingPool:
        rows = torch.nonzero(torch.from_numpy(self.assignment[0] != UNSEEN)).flatten()
        return TrainingPool(self.x, self.y, self.ids, (Fold(0, 0, rows, rows),), self.class_names)
