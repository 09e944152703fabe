"""Paired comparisons of the finalized models on the same test patients: every winner
against the best, the input modes of each backbone against each other (dual against one
view: the first seed paper's claim), and the best against the baseline. With a few dozen
test patients most differences are within noise; the report must say which ones the data
can support and which it cannot, and on how many patients each rests.

The best is the search's best trial (ranked on validation, never on the test figures it
is compared on). Each winner is compared through its first seed's model, the one exported
first and shown in the report's panels. The figures compared are accuracy, balanced
accuracy, the macro ROC AUC and each class's sensitivity (recall), by the tests of
`results.paired.compare_models`. p-values are Holm-adjusted over the run's comparisons of
the same figure, and a difference is supported by the evidence rule of
`results.paired.is_supported` on the adjusted p-value: below 0.05, an interval that
excludes 0, and at least 6 discordant patients behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from results.paired import PairedDifference, compare_models, holm_adjusted
from search.reporting.comparison_text import evidence_words

__all__ = ["Candidate", "comparison_metrics", "comparison_rows", "mode_pairs"]

METRICS = ("accuracy", "balanced_accuracy", "roc_auc")
_READABLE = {"roc_auc": "ROC AUC"}


@dataclass(frozen=True)
class Candidate:
    """A model in the comparisons: its name in the report, and its test predictions."""

    name: str
    trial_id: str | None
    backbone: str | None
    mode: str | None
    probabilities: np.ndarray
    predicted: np.ndarray


def comparison_metrics(classes: int) -> tuple[str, ...]:
    """The figures compared: accuracy, balanced accuracy, the macro ROC AUC and each
    class's sensitivity (for two classes, the negative class's is the specificity)."""
    return (*METRICS, *(f"sensitivity[{k}]" for k in range(classes)))


def comparison_rows(
    search: str,
    labels: np.ndarray,
    candidates: Sequence[Candidate],
    baseline: Candidate | None,
    resamples: int = 2000,
    seed: int = 0,
    patient_set: str = "test",
    class_names: Sequence[str] | None = None,
) -> list[dict]:
    """The rows of the `comparisons` table: `candidates` best first (the first is the best),
    `baseline` compared with the best; `class_names` name the classes in the rows' words."""
    pairs: list[tuple[str, Candidate, Candidate]] = []
    best = candidates[0] if candidates else None
    if best is not None:
        pairs += [("against the best", best, other) for other in candidates[1:]]
        pairs += [("input modes", a, b) for a, b in mode_pairs(candidates)]
        if baseline is not None:
            pairs.append(("against the baseline", best, baseline))
    classes = candidates[0].probabilities.shape[1] if candidates else 0
    names = tuple(class_names or (f"class {k}" for k in range(classes)))
    metrics = comparison_metrics(classes)
    compared: list[tuple[str, Candidate, Candidate, PairedDifference]] = []
    for kind, a, b in pairs:
        if np.array_equal(a.probabilities, b.probabilities):
            continue  # the same model twice (the pick is that winner): nothing to compare
        differences = compare_models(labels, a.probabilities, b.probabilities, a.predicted,
                                     b.predicted, metrics, resamples, seed)  # fmt: skip
        compared += [(kind, a, b, d) for d in differences]
    for metric in metrics:  # one family per figure: each asks its own question
        family = [i for i, (*_, d) in enumerate(compared) if d.metric == metric]
        adjusted = holm_adjusted([compared[i][3] for i in family])
        for i, d in zip(family, adjusted, strict=True):
            compared[i] = (*compared[i][:3], d)
    return [_row(search, kind, a, b, d, patient_set, seed, names) for kind, a, b, d in compared]


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


def _row(search, kind, a: Candidate, b: Candidate, d: PairedDifference, patient_set, seed,
         class_names) -> dict:  # fmt: skip
    base, _, k = d.metric.partition("[")
    cls = class_names[int(k.rstrip("]"))] if k else None
    figure = _READABLE.get(base, base.replace("_", " ")) + (f" of {cls}" if cls else "")
    row = {
        "search": search, "kind": kind, "model_a": a.name, "trial_a": a.trial_id,
        "model_b": b.name, "trial_b": b.trial_id, "metric": d.metric, "class": cls,
        "figure": figure, "value_a": d.a, "value_b": d.b, "difference": d.difference,
        "low": d.low, "high": d.high, "p_value": d.p_value, "p_holm": d.p_adjusted,
        "method": d.method, "interval_method": d.interval_method, "resamples": d.resamples,
        "a_only": d.a_only, "b_only": d.b_only, "discordant": d.discordant,
        "discordant_by_class": list(d.discordant_by_class), "patients": d.patients,
        "patient_set": patient_set, "seed": seed, "supported": d.supported,
    }  # fmt: skip
    row["evidence"] = evidence_words(row, class_names)
    return row
