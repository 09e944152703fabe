"""Test figures of a model's class probabilities: macro and per-class metrics (the
negative predictive value too), confusion matrix, ROC curves, calibration (reliability
bins, expected calibration error), and 95 % intervals over patients, because a test split
of a few dozen patients leaves wide uncertainty the reader must see. The intervals are
`results.figure_intervals`': exact ones with their counts for proportions, closed forms
for balanced accuracy and each class's AUC, a bootstrap stratified by class for the rest."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_curve

from results.figure_intervals import figure_intervals
from trainables.metrics import classification_metrics, confusion_matrix

__all__ = ["EvaluationFigures", "choose_threshold", "evaluate_predictions", "predict_classes"]

CALIBRATION_BINS = 10


@dataclass
class EvaluationFigures:
    """Figures on one set of patients. `intervals` maps a macro metric ("ece" too) and
    `<metric>/<class>` for per-class ones to its 95 % (low, high), absent where none can be
    given; `counts` maps each proportion's key to its (numerator, denominator), and
    `interval_methods` each interval's key to how it was made. `bootstrap` is the number
    of resamples behind the figures that have no closed form."""

    class_names: tuple[str, ...]
    count: int
    macro: dict[str, float]
    per_class: dict[str, list[float]]
    confusion: list[list[int]]
    intervals: dict[str, tuple[float, float]]
    ece: float
    reliability: list[dict[str, float]]
    roc: dict[str, dict[str, list[float]]]
    threshold: float | None = None
    bootstrap: int = 0
    extra: dict = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    interval_methods: dict[str, str] = field(default_factory=dict)


def predict_classes(probabilities: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """The argmax; for two classes with a threshold, class 1 when its probability reaches
    the threshold."""
    probabilities = np.asarray(probabilities, dtype=float)
    if threshold is not None and probabilities.shape[1] == 2:
        return (probabilities[:, 1] >= threshold).astype(np.int64)
    return probabilities.argmax(axis=1)


def choose_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """For a binary class set: the probability of class 1 above which to call it, chosen on
    validation to maximise balanced accuracy (Youden's J); ties go to the threshold
    nearest 0.5."""
    labels, scores = np.asarray(labels), np.asarray(probabilities, dtype=float)[:, 1]
    candidates = np.unique(np.concatenate([scores, [0.5]]))
    best, chosen = -1.0, 0.5
    for threshold in sorted(candidates, key=lambda t: abs(t - 0.5)):
        predicted = (scores >= threshold).astype(np.int64)
        macro, _ = classification_metrics(labels, probabilities, predicted)
        if macro["balanced_accuracy"] > best + 1e-12:
            best, chosen = macro["balanced_accuracy"], float(threshold)
    return chosen


def evaluate_predictions(
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: tuple[str, ...],
    threshold: float | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    predicted: np.ndarray | None = None,
) -> EvaluationFigures:
    """Every test figure of `probabilities` (n, classes) against `labels` (n,), with 95 %
    intervals (`results.figure_intervals`; `bootstrap` resamples of the patients for the
    figures without a closed form, none of those at 0).
    `predicted` (n,) gives the predicted classes when no one threshold made them (outer
    folds pooled, each with its own threshold)."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=float)
    if predicted is None:
        predicted = predict_classes(probabilities, threshold)
    predicted = np.asarray(predicted, dtype=np.int64)
    macro, per_class = classification_metrics(labels, probabilities, predicted)
    confusion = confusion_matrix(labels, predicted, len(class_names))
    ece, reliability = calibration(labels, probabilities, predicted)
    intervals = figure_intervals(labels, probabilities, predicted, class_names, bootstrap, seed)
    return EvaluationFigures(
        class_names=tuple(class_names),
        count=len(labels),
        macro=macro,
        per_class={k: [float(v) for v in values] for k, values in per_class.items()}
        | {"npv": _npv(confusion)},
        confusion=confusion.tolist(),
        intervals=intervals.intervals,
        ece=ece,
        reliability=reliability,
        roc=_roc_curves(labels, probabilities, class_names),
        threshold=threshold,
        bootstrap=bootstrap,
        counts=intervals.counts,
        interval_methods=intervals.methods,
    )


def calibration(
    labels: np.ndarray, probabilities: np.ndarray, predicted: np.ndarray
) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error of the predicted class's probability (equal-width bins of
    confidence; the gap weighted by each bin's share of patients) and the bins themselves
    for a reliability diagram."""
    confidence = probabilities[np.arange(len(predicted)), predicted]
    correct = (predicted == labels).astype(float)
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    ece, bins = 0.0, []
    for b in range(CALIBRATION_BINS):
        inside = which == b
        if not inside.any():
            continue
        mean_confidence, accuracy = float(confidence[inside].mean()), float(correct[inside].mean())
        ece += inside.mean() * abs(mean_confidence - accuracy)
        bins.append(
            {"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(inside.sum()),
             "confidence": mean_confidence, "accuracy": accuracy}
        )  # fmt: skip
    return float(ece), bins


def _roc_curves(labels, probabilities, class_names) -> dict[str, dict[str, list[float]]]:
    """One-vs-rest ROC curve of each class present with both outcomes."""
    curves = {}
    for c, name in enumerate(class_names):
        positive = labels == c
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, probabilities[:, c])
        curves[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    return curves


def _npv(confusion: np.ndarray) -> list[float]:
    """Each class's negative predictive value: of the patients not called that class, the
    share that are not it (0 where none is)."""
    true_pos, actual, called = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    not_called = confusion.sum() - called
    true_neg = not_called - (actual - true_pos)
    return [float(t / m) if m else 0.0 for t, m in zip(true_neg, not_called, strict=True)]
