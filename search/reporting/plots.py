"""Figures of a model's test evaluation: ROC curves, the reliability diagram and the
confusion matrix, drawn from `EvaluationFigures` (matplotlib Figures, no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from results.plots import save_png
from search.inference.evaluate import EvaluationFigures

__all__ = [
    "EVALUATION_PLOTS",
    "calibration_figure",
    "confusion_figure",
    "decision_curve_figure",
    "roc_figure",
    "save_evaluation_plots",
]


def roc_figure(figures: EvaluationFigures, title: str = "") -> Figure:
    """One-vs-rest ROC curve of each class, its AUC in the legend, the chance diagonal."""
    figure, ax = _unit_square("chance")
    aucs = dict(zip(figures.class_names, figures.per_class.get("roc_auc", []), strict=False))
    for name, curve in figures.roc.items():
        auc = aucs.get(name, float("nan"))
        ax.step(curve["fpr"], curve["tpr"], where="post", label=f"{name} (AUC {auc:.2f})")
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.set_title(title or f"ROC, {figures.count} test patients")
    ax.legend(loc="lower right", fontsize=8)
    return figure


def calibration_figure(figures: EvaluationFigures, title: str = "") -> Figure:
    """Reliability diagram: each confidence bin's accuracy against its mean confidence, the
    marker's area growing with the bin's patients; the diagonal is perfect calibration."""
    figure, ax = _unit_square("perfectly calibrated")
    bins = figures.reliability
    if bins:
        confidence = [b["confidence"] for b in bins]
        accuracy = [b["accuracy"] for b in bins]
        sizes = [30 + 270 * b["count"] / figures.count for b in bins]
        ax.plot(confidence, accuracy, color="#1f77b4", linewidth=1)
        ax.scatter(confidence, accuracy, s=sizes, color="#1f77b4", zorder=3, label="bins")
        for b in bins:
            ax.annotate(str(b["count"]), (b["confidence"], b["accuracy"]), fontsize=7,
                        xytext=(5, -10), textcoords="offset points")  # fmt: skip
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"calibration, ECE {figures.ece:.3f}")
    ax.legend(loc="lower right", fontsize=8)
    return figure


def _unit_square(diagonal: str) -> tuple[Figure, object]:
    """A square plot of [0, 1] x [0, 1] with its dotted diagonal labelled `diagonal`."""
    figure = Figure(figsize=(4.6, 4.2), layout="constrained")
    ax = figure.subplots()
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1, label=diagonal)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    return figure, ax


def confusion_figure(figures: EvaluationFigures, title: str = "") -> Figure:
    """The confusion matrix as counts: true class by row, predicted by column."""
    counts = np.asarray(figures.confusion)
    names = figures.class_names
    figure = Figure(figsize=(1.6 + 0.9 * len(names), 1.2 + 0.9 * len(names)), layout="constrained")
    ax = figure.subplots()
    ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
    for (row, col), value in np.ndenumerate(counts):
        dark = value > counts.max() / 2
        ax.text(col, row, str(value), ha="center", va="center",
                color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"confusion, {figures.count} patients", fontsize=10)
    return figure


EVALUATION_PLOTS = {"roc": roc_figure, "calibration": calibration_figure,
                    "confusion": confusion_figure}  # fmt: skip


def save_evaluation_plots(figures: EvaluationFigures, folder: str | Path) -> list[Path]:
    """`roc.png`, `calibration.png` and `confusion.png` in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    drawn = {name: draw(figures) for name, draw in EVALUATION_PLOTS.items()}
    return [save_png(figure, folder / f"{name}.png") for name, figure in drawn.items()]


def decision_curve_figure(curves: pd.DataFrame) -> Figure:
    """Net benefit against the threshold risk, one line per model (rows of the
    `decision_curves` table), with acting on everyone and on no one; the y axis is cut
    below at -0.05 where acting on everyone falls away."""
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = figure.add_subplot()
    first = curves[curves["model"] == curves["model"].iloc[0]]
    for model, rows in curves.groupby("model", sort=False):
        ax.plot(rows["threshold"], rows["net_benefit"], marker=".", label=str(model))
    ax.plot(first["threshold"], first["treat_all"], color="grey", linestyle="--",
            label=f"treat all as {first['positive_class'].iloc[0]}")  # fmt: skip
    ax.plot(first["threshold"], first["treat_none"], color="black", linewidth=1,
            label="treat none")  # fmt: skip
    top = max(float(curves["net_benefit"].max()), float(first["treat_all"].max()), 0.05)
    ax.set_ylim(-0.05, top * 1.1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("threshold risk at which one would act")
    ax.set_ylabel("net benefit")
    ax.set_title(f"decision curves, {int(first['patients'].iloc[0])} test patients")
    ax.legend(loc="upper right", fontsize=7)
    return figure
