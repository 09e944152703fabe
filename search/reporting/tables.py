"""Tables of the finalized models: the figures over seeds (mean and spread), the seeds'
Tables 3 and 4 laid out backbone x mode, and the figures within subgroups of any manifest
metadata column (sex, scanner...)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from search.inference.evaluate import predict_classes
from trainables.metrics import METRICS, classification_metrics

__all__ = ["TABLE_METRICS", "backbone_mode_table", "over_seeds", "subgroup_rows"]

# The columns of the seeds' Tables 3 and 4, in their order, then calibration.
TABLE_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision",
                 "f1", "roc_auc")  # fmt: skip


def over_seeds(finals: pd.DataFrame) -> pd.DataFrame:
    """One row per winner (search, trial): mean and standard deviation over its seeds of
    every test figure, the seeds counted, and the widest 95 % interval any seed had."""
    keys = ["search", "trial_id", "backbone", "mode"]
    metrics = [f"test_{m}" for m in METRICS] + ["test_ece"]
    rows = []
    for key, group in finals.groupby(keys, sort=False):
        row = dict(zip(keys, key, strict=True))
        row.update(seeds=len(group), test_patients=int(group["test_patients"].iloc[0]))
        for column in metrics:
            values = group[column].astype(float)
            row[f"{column}_mean"] = values.mean()
            row[f"{column}_sd"] = values.std(ddof=1) if len(values) > 1 else float("nan")
            if f"{column}_low" in group:
                row[f"{column}_low_min"] = group[f"{column}_low"].min()
                row[f"{column}_high_max"] = group[f"{column}_high"].max()
        rows.append(row)
    return pd.DataFrame(rows)


def backbone_mode_table(summary: pd.DataFrame, metrics: Sequence[str] = TABLE_METRICS):
    """Rows backbone x mode (as the seeds' Tables 3 and 4), one column per test metric as
    "mean ± sd" over seeds (mean alone for one seed), best balanced accuracy first."""
    ordered = summary.sort_values("test_balanced_accuracy_mean", ascending=False)
    table = ordered[["backbone", "mode", "seeds", "test_patients"]].copy()
    for metric in [*metrics, "ece"]:
        mean, sd = ordered[f"test_{metric}_mean"], ordered[f"test_{metric}_sd"]
        table[metric.replace("_", " ")] = [_mean_sd(m, s) for m, s in zip(mean, sd, strict=True)]
    return table.reset_index(drop=True)


def _mean_sd(mean: float, sd: float) -> str:
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.3f}" if np.isnan(sd) else f"{mean:.3f}\u00a0±\u00a0{sd:.3f}"  # one line


def subgroup_rows(
    labels: np.ndarray,
    probabilities: np.ndarray,
    metadata: dict[str, Sequence[str]],
    threshold: float | None = None,
) -> list[dict]:
    """The macro test figures within each value of each metadata column: rows of
    (attribute, group, patients, metric, value). A group's figure that its patients
    cannot define (ROC AUC with one class present) is NaN, not dropped, so the reader
    sees the group was there."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=float)
    rows = []
    for attribute, values in metadata.items():
        values = np.asarray([v if v != "" else "(blank)" for v in values], dtype=object)
        if len(values) != len(labels):
            raise ValueError(f"metadata {attribute!r}: {len(values)} values for {len(labels)}")
        for group in sorted(set(values)):
            inside = values == group
            y, p = labels[inside], probabilities[inside]
            macro, _ = classification_metrics(y, p, predict_classes(p, threshold))
            for metric in METRICS:
                rows.append({"attribute": attribute, "group": str(group),
                             "patients": int(inside.sum()), "metric": metric,
                             "value": float(macro[metric])})  # fmt: skip
    return rows
