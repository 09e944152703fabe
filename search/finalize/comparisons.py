"""Paired comparisons of the finalized models on the same test patients: every winner
against the best, the input modes of each backbone against each other (dual against one
view: the first seed paper's claim), and the best against the baseline. With a few dozen
test patients most differences are within noise; the report must say which ones the data
can support and which it cannot.

The best is the search's best trial (ranked on validation, never on the test figures it
is compared on). Each winner is compared through its first seed's model, the one exported
first and shown in the report's panels. A difference is `supported` when its 95 % interval
excludes 0 and its p-value, Holm-adjusted over the run's comparisons of the same figure,
is below 0.05. A bootstrap p-value is never below 2 / (resamples + 1): finalize draws
twice `--bootstrap` resamples (2000 by default), so a family of up to 50 comparisons can
reach it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from results.paired import PairedDifference, compare_models

__all__ = [
    "Candidate",
    "comparison_rows",
    "first_seeds",
    "holm",
    "mode_pairs",
    "plain_sentence",
]

ALPHA = 0.05
METRICS = ("balanced_accuracy", "roc_auc", "sensitivity")


@dataclass(frozen=True)
class Candidate:
    """A model in the comparisons: its name in the report, and its test predictions."""

    name: str
    trial_id: str | None
    backbone: str | None
    mode: str | None
    probabilities: np.ndarray
    predicted: np.ndarray


def first_seeds(finals: Sequence) -> list:
    """Each winner's first-seed model (FinalModel), in the winners' order (best first):
    the model that represents a winner wherever one per winner is needed."""
    first: dict[str, object] = {}
    for final in finals:
        first.setdefault(final.trial["trial_id"], final)
    return list(first.values())


def comparison_rows(
    search: str,
    labels: np.ndarray,
    candidates: Sequence[Candidate],
    baseline: Candidate | None,
    resamples: int = 2000,
    seed: int = 0,
    patient_set: str = "test",
) -> list[dict]:
    """The rows of the `comparisons` table: `candidates` best first (the first is the best),
    `baseline` compared with the best."""
    pairs: list[tuple[str, Candidate, Candidate]] = []
    best = candidates[0] if candidates else None
    if best is not None:
        pairs += [("against the best", best, other) for other in candidates[1:]]
        pairs += [("input modes", a, b) for a, b in mode_pairs(candidates)]
        if baseline is not None:
            pairs.append(("against the baseline", best, baseline))
    # two classes: the macro sensitivity is the balanced accuracy; class 1's is the figure
    classes = candidates[0].probabilities.shape[1] if candidates else 0
    metrics = METRICS if classes != 2 else ("balanced_accuracy", "roc_auc", "sensitivity[1]")
    rows = []
    for kind, a, b in pairs:
        if np.array_equal(a.probabilities, b.probabilities):
            continue  # the same model twice (the pick is that winner): nothing to compare
        differences = compare_models(labels, a.probabilities, b.probabilities, a.predicted,
                                     b.predicted, metrics, resamples, seed)  # fmt: skip
        rows += [_row(search, kind, a, b, d, patient_set, seed) for d in differences]
    for metric in metrics:  # one family per metric: each asks its own question
        family = [r for r in rows if r["metric"] == metric]
        for row, adjusted in zip(family, holm([r["p_value"] for r in family]), strict=True):
            row["p_holm"] = adjusted
            row["supported"] = bool(
                adjusted < ALPHA and not (row["low"] <= 0 <= row["high"])
            )  # an undefined interval (NaN) supports nothing
    return rows


def mode_pairs(candidates: Sequence[Candidate]) -> list[tuple[Candidate, Candidate]]:
    """For each backbone with several input modes among the candidates: its dual (two
    views) model against each single-view one, else its modes pairwise in order."""
    by_backbone: dict[str, list[Candidate]] = {}
    for c in candidates:
        if c.backbone is not None and c.mode is not None:
            by_backbone.setdefault(c.backbone, []).append(c)
    pairs = []
    for models in by_backbone.values():
        duals = [m for m in models if m.mode == "dual"]
        singles = [m for m in models if m.mode != "dual"]
        if duals:
            pairs += [(duals[0], single) for single in singles]
        else:
            pairs += [(a, b) for i, a in enumerate(singles) for b in singles[i + 1 :]]
    return pairs


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), in the input order; NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    order = defined[np.argsort(p[defined], kind="stable")]
    running, m = 0.0, len(order)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def plain_sentence(row: dict) -> str:
    """What one comparison says, for a reader: the difference, its interval and whether
    the data support it."""
    metric = row["metric"].replace("_", " ")
    figure = (
        f"{row['model_a']} minus {row['model_b']}, {metric}: {row['difference']:+.3f} "
        f"(95 % interval {row['low']:+.3f} to {row['high']:+.3f}; {row['method']}, "
        f"p = {row['p_value']:.3g}, Holm-adjusted {row['p_holm']:.3g})"
    )
    if row["supported"]:
        better = row["model_a"] if row["difference"] > 0 else row["model_b"]
        return f"{figure}: the data support a difference; {better} is better."
    return f"{figure}: the {row['patients']} patients cannot tell these apart."


def _row(search, kind, a: Candidate, b: Candidate, d: PairedDifference, patient_set, seed):
    return {
        "search": search, "kind": kind, "model_a": a.name, "trial_a": a.trial_id,
        "model_b": b.name, "trial_b": b.trial_id, "metric": d.metric, "value_a": d.a,
        "value_b": d.b, "difference": d.difference, "low": d.low, "high": d.high,
        "p_value": d.p_value, "method": d.method, "patients": d.patients,
        "patient_set": patient_set, "seed": seed,
    }  # fmt: skip
