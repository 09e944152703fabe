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

from results.paired import PairedDifference, compare_models, holm_adjusted, min_discordant

__all__ = [
    "Candidate",
    "comparison_metrics",
    "comparison_rows",
    "evidence_words",
    "first_seeds",
    "mode_pairs",
    "plain_sentence",
]

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


def first_seeds(finals: Sequence) -> list:
    """Each winner's first-seed model (FinalModel), in the winners' order (best first):
    the model that represents a winner wherever one per winner is needed."""
    first: dict[str, object] = {}
    for final in finals:
        first.setdefault(final.trial["trial_id"], final)
    return list(first.values())


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


def evidence_words(row: dict, class_names: Sequence[str]) -> str:
    """The patients a comparison rests on, in words: for the figures of right and wrong
    calls, those one model alone got right, by class and by model; for the scores, those
    scored differently."""
    classes = [(name, count) for name, count in zip(class_names, row["discordant_by_class"],
                                                    strict=True) if count]  # fmt: skip
    count = row["discordant"]
    if count == 0:
        patients = "no patient"
    elif row["class"] is not None or len(classes) == 1:
        patients = f"{_patients(count)} of class {row['class'] or classes[0][0]}"
    else:
        listed = [f"{name} ({n})" for name, n in classes]
        patients = f"{_patients(count)} of classes {', '.join(listed[:-1])} and {listed[-1]}"
    if row["metric"].startswith("roc_auc"):
        return f"{patients} scored differently"
    return (
        f"{patients} right by one model only ({row['a_only']} by {row['model_a']}, "
        f"{row['b_only']} by {row['model_b']})"
    )


def plain_sentence(row: dict) -> str:
    """What one comparison says, for a reader: the difference, its interval, the patients
    behind it and whether the data support it."""
    interval = (
        "no interval"
        if row["low"] != row["low"]
        else f"95 % interval {row['low']:+.3f} to {row['high']:+.3f}"
    )
    figure = (
        f"{row['model_a']} minus {row['model_b']}, {row['figure']}: {row['difference']:+.3f} "
        f"({interval}; {row['method']}, p = {row['p_value']:.3g}, Holm-adjusted "
        f"{row['p_holm']:.3g})"
    )
    if row["supported"]:
        better = row["model_a"] if row["difference"] > 0 else row["model_b"]
        return f"{figure}: the data support a difference; {better} is better ({row['evidence']})."
    if row["discordant"] < min_discordant():
        return f"{figure}: rests on {row['evidence']}: cannot tell."
    return f"{figure}: the {row['patients']} patients cannot tell these apart ({row['evidence']})."


def _patients(count: int) -> str:
    return f"{count} patient" + ("" if count == 1 else "s")


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
