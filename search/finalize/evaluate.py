"""Test figures of a model's class probabilities: macro and per-class metrics, confusion
matrix, ROC curves, calibration (reliability bins, expected calibration error), and
bootstrap 95 % intervals over patients, because a test split of a few dozen patients
leaves wide uncertainty the reader must see."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_curve

from trainables.metrics import PER_CLASS_METRICS, classification_metrics, confusion_matrix

__all__ = ["EvaluationFigures", "choose_threshold", "evaluate_predictions", "predict_classes"]

CALIBRATION_BINS = 10


@dataclass
class EvaluationFigures:
    """Figures on one set of patients. `intervals` maps a macro metric (and
    `<metric>/<class>` for per-class ones) to its bootstrap (low, high)."""

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
    """Every test figure of `probabilities` (n, classes) against `labels` (n,), with
    percentile bootstrap 95 % intervals from `bootstrap` resamples of the patients.
    `predicted` (n,) gives the predicted classes when no one threshold made them (outer
    folds pooled, each with its own threshold)."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=float)
    if predicted is None:
        predicted = predict_classes(probabilities, threshold)
    predicted = np.asarray(predicted, dtype=np.int64)
    macro, per_class = classification_metrics(labels, probabilities, predicted)
    ece, reliability = calibration(labels, probabilities, predicted)
    return EvaluationFigures(
        class_names=tuple(class_names),
        count=len(labels),
        macro=macro,
        per_class={k: [float(v) for v in values] for k, values in per_class.items()},
        confusion=confusion_matrix(labels, predicted, len(class_names)).tolist(),
        intervals=_bootstrap(labels, probabilities, predicted, class_names, bootstrap, seed),
        ece=ece,
        reliability=reliability,
        roc=_roc_curves(labels, probabilities, class_names),
        threshold=threshold,
        bootstrap=bootstrap,
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


def _bootstrap(labels, probabilities, predicted, class_names, resamples, seed):
    """Percentile 95 % intervals: patients drawn with replacement; a resample where a
    metric is undefined (a class absent: no AUC) is left out of that metric only."""
    if resamples <= 0:
        return {}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        pick = rng.integers(0, len(labels), len(labels))
        y, p, called_as = labels[pick], probabilities[pick], predicted[pick]
        macro, per_class = classification_metrics(y, p, called_as)
        for name, value in macro.items():
            draws.setdefault(name, []).append(value)
        counts = np.bincount(y, minlength=len(class_names))
        called = np.bincount(called_as, minlength=len(class_names))
        # Where a class's figure is 0/0 in this resample, it is left out, not counted as 0.
        defined = {"specificity": counts < len(y), "precision": called > 0}
        present = counts > 0
        for name in PER_CLASS_METRICS:
            for c, cls in enumerate(class_names):
                if defined.get(name, present)[c]:
                    draws.setdefault(f"{name}/{cls}", []).append(per_class[name][c])
    intervals = {}
    for name, values in draws.items():
        values = np.asarray(values, dtype=float)
        values = values[~np.isnan(values)]
        if len(values):
            low, high = np.percentile(values, [2.5, 97.5])
            intervals[name] = (float(low), float(high))
    return intervals
