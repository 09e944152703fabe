"""The decision curves of a two-class search's finalized models (`results.decision_curve`):
each winner's first seed, the greedy ensemble and the baseline, on the same test patients,
as rows of the `decision_curves` table."""

from __future__ import annotations

import numpy as np

from results.decision_curve import net_benefit
from search.records import BASELINE_NAME, ENSEMBLE_NAME, Comparisons, FinalModel, first_seeds

__all__ = ["decision_curve_rows"]


def decision_curve_rows(
    search: str,
    finals: list[FinalModel],
    comparisons: Comparisons,
    labels: np.ndarray,
    class_names: tuple[str, ...],
) -> list[dict]:
    """Net benefit of acting on class 1 (the second class, the one a binary threshold
    calls) at each threshold, per model; none for other than two classes."""
    baseline = comparisons.baseline_model
    if len(class_names) != 2 or baseline is None:
        return []
    models = [(f"{f.trial['backbone']} / {f.trial['mode']}", f.trial["trial_id"], f.seed,
               f.test_probabilities) for f in first_seeds(finals)]  # fmt: skip
    if comparisons.ensemble is not None:
        models.append((ENSEMBLE_NAME, None, None, comparisons.ensemble.test_probabilities))
    models.append((BASELINE_NAME, None, None, baseline.test_probabilities))
    positive = np.asarray(labels) == 1
    rows = []
    for model, trial_id, seed, probabilities in models:
        curve = net_benefit(np.asarray(probabilities)[:, 1], positive)
        rows += [{"search": search, "model": model, "trial_id": trial_id, "seed": seed,
                  "positive_class": class_names[1], "patients": len(positive), **point}
                 for point in curve.to_dict("records")]  # fmt: skip
    return rows
