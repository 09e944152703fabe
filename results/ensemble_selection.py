"""Greedy ensemble selection over a search's trials (Caruana, Niculescu-Mizil, Crew & Ksikes,
"Ensemble selection from libraries of models", ICML 2004), as AutoGluon's `EnsembleSelection`
does it for tabular models.

Why: a search leaves many trained trials; a weighted average of a few of them is usually
better calibrated and more accurate than the best one alone, and choosing them from their
out-of-fold probabilities of the same patients needs no new training. Each round adds, with
replacement, the candidate whose addition gives the ensemble (the plain mean of the picks, so
a candidate picked twice counts twice) the lowest loss; a candidate's weight is how often it
was picked over the rounds kept.

As AutoGluon: a fixed number of rounds (no early stop), then the rounds up to the first one
with the lowest loss are kept (the loss can rise after its minimum, when every addition
moves the weights away from their best), so the weights never do worse than any earlier
round, the best single model included. Ties (losses equal to a relative 1e-12) go to a
candidate already picked (a smaller ensemble), then to the one first in the mapping's order:
the caller orders candidates by their search rank, and the selection is deterministic.

The losses, lower better: "log_loss" (the default: proper and smooth, which suits small data
where balanced accuracy ties a lot; probabilities clipped to [1e-15, 1]), "brier" (the
multiclass Brier score, the squared distance to the one-hot label summed over classes,
in [0, 2]) and "balanced_accuracy" (1 - the mean recall over the classes present in the
labels, of the argmax; a tie between classes goes to the first).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["METRICS", "EnsembleSelection", "ensemble_probabilities", "select_ensemble"]

_CLIP = 1e-15  # log loss: the least probability of the true class
_TIE = 1e-12  # relative difference under which two losses tie (as AutoGluon)
_SUM_TOLERANCE = 1e-3  # a candidate's rows must sum to 1 within this


@dataclass(frozen=True)
class EnsembleSelection:
    """The outcome of `select_ensemble`.

    Attributes:
        weights: candidate name -> its share of the kept rounds (summing to 1), the picked
            candidates only, in the order of their first pick.
        picks: the candidate picked in each round, all rounds.
        losses: the ensemble's loss after each round, all rounds.
        size: the rounds kept (the first with the lowest loss): the weights count
            `picks[:size]`.
        metric: the loss's name.
    """

    weights: dict[str, float]
    picks: tuple[str, ...]
    losses: tuple[float, ...]
    size: int
    metric: str

    @property
    def loss(self) -> float:
        """The kept ensemble's loss."""
        return self.losses[self.size - 1]


def select_ensemble(
    labels: ArrayLike,
    candidates: Mapping[str, ArrayLike],
    rounds: int = 25,
    metric: str = "log_loss",
    initial: int = 0,
) -> EnsembleSelection:
    """Caruana's greedy selection with replacement, for `rounds` rounds.

    Args:
        labels: (n,) class index of each patient.
        candidates: name -> (n, C) class probabilities of the same patients in the same
            order (out-of-fold), best-ranked first (ties go to the first).
        rounds: rounds of selection, at least 1.
        metric: a loss of `METRICS`.
        initial: Caruana's sorted initialisation: the first `initial` rounds add the
            `initial` best single candidates once each, best first (at most `rounds` and
            the number of candidates).

    Raises:
        ValueError: no candidates, shapes that disagree (naming the candidate), rows that
            are not probabilities, labels out of range, an unknown metric, or bad
            `rounds` or `initial`.
    """
    loss = _metric(metric)
    names = list(candidates)
    y, stack = _stack(labels, candidates)
    _check_rounds(rounds, initial, len(names))
    order = _sorted_initialisation(loss(y, stack), initial)
    total = np.zeros(stack.shape[1:])
    picks: list[int] = []
    losses: list[float] = []
    for r in range(rounds):
        trial = loss(y, (total + stack) / (r + 1))  # each candidate added to the picks
        best = order[r] if r < initial else _best(trial, set(picks))
        total += stack[best]
        picks.append(best)
        losses.append(float(trial[best]))
    size = _kept(losses)
    counts = Counter(picks[:size])  # in the order of first pick
    return EnsembleSelection(
        weights={names[i]: count / size for i, count in counts.items()},
        picks=tuple(names[i] for i in picks),
        losses=tuple(losses),
        size=size,
        metric=metric,
    )


def ensemble_probabilities(
    candidates: Mapping[str, ArrayLike], weights: Mapping[str, float]
) -> np.ndarray:
    """The (n, C) weighted mean of the weighted candidates' probabilities (others ignored).

    Raises:
        ValueError: no weights, a weight that is negative or names no candidate, all
            weights 0, or shapes that disagree.
    """
    if not weights:
        raise ValueError("no weights")
    missing = [name for name in weights if name not in candidates]
    if missing:
        raise ValueError(f"weights name no candidate: {missing}")
    w = np.array([weights[name] for name in weights], dtype=float)
    if np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum: {dict(weights)}")
    stack = _probabilities({name: candidates[name] for name in weights})
    return np.tensordot(w / w.sum(), stack, axes=1)


def _log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    true = p[..., np.arange(len(y)), y]
    return -np.log(np.clip(true, _CLIP, 1.0)).mean(axis=-1)


def _brier(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    onehot = np.eye(p.shape[-1])[y]
    return ((p - onehot) ** 2).sum(axis=-1).mean(axis=-1)


def _balanced_error(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    correct = p.argmax(axis=-1) == y
    recalls = [correct[..., y == c].mean(axis=-1) for c in np.unique(y)]
    return 1.0 - np.mean(recalls, axis=0)


Loss = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(labels (n,), probabilities (..., n, C)) -> losses (...)"""

METRICS: dict[str, Loss] = {
    "log_loss": _log_loss,
    "brier": _brier,
    "balanced_accuracy": _balanced_error,
}


def _metric(name: str) -> Loss:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; one of {sorted(METRICS)}")
    return METRICS[name]


def _stack(labels: ArrayLike, candidates: Mapping[str, ArrayLike]) -> tuple[np.ndarray, np.ndarray]:
    """The labels (n,) and the candidates' probabilities (K, n, C), checked."""
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D array of class indices, got {y.dtype} {y.shape}")
    stack = _probabilities(candidates, rows=len(y))
    if len(y) == 0 or y.min() < 0 or y.max() >= stack.shape[-1]:
        raise ValueError(f"labels must be class indices in [0, {stack.shape[-1]})")
    return y, stack


def _probabilities(candidates: Mapping[str, ArrayLike], rows: int | None = None) -> np.ndarray:
    """(K, n, C): every candidate (n, C) rows of probabilities, n = `rows` if given, else
    the first candidate's, C the first candidate's."""
    if not candidates:
        raise ValueError("no candidates")
    arrays = {name: np.asarray(p, dtype=float) for name, p in candidates.items()}
    first = next(iter(arrays.values()))
    if rows is None:
        rows = first.shape[0] if first.ndim else 0
    expected = (rows, first.shape[1] if first.ndim == 2 else "C")
    for name, p in arrays.items():
        if p.shape != expected:
            raise ValueError(f"candidate {name!r}: shape {p.shape}, expected {expected}")
        _check_rows(name, p)
    return np.stack(list(arrays.values()))


def _check_rows(name: str, p: np.ndarray) -> None:
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"candidate {name!r}: probabilities must be finite and non-negative")
    if not np.allclose(p.sum(axis=1), 1.0, rtol=0, atol=_SUM_TOLERANCE):
        raise ValueError(f"candidate {name!r}: rows must sum to 1 (probabilities, not logits)")


def _check_rounds(rounds: int, initial: int, candidates: int) -> None:
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if not 0 <= initial <= min(rounds, candidates):
        raise ValueError(
            f"initial must be in [0, {min(rounds, candidates)}] (rounds, candidates), got {initial}"
        )


def _sorted_initialisation(single: np.ndarray, initial: int) -> Sequence[int]:
    """The `initial` best single candidates, best first (ties: the first)."""
    return [int(i) for i in np.argsort(single, kind="stable")[:initial]]


def _ties(losses: np.ndarray | Sequence[float]) -> np.ndarray:
    """The indices of the losses that tie with the lowest."""
    losses = np.asarray(losses)
    return np.flatnonzero(np.isclose(losses, losses.min(), rtol=_TIE, atol=0.0))


def _best(losses: np.ndarray, picked: set[int]) -> int:
    """The lowest loss; of ties, one already picked, then the first."""
    ties = [int(i) for i in _ties(losses)]
    return next((i for i in ties if i in picked), ties[0])


def _kept(losses: Sequence[float]) -> int:
    """The rounds up to the first with the lowest loss."""
    return int(_ties(losses)[0]) + 1
