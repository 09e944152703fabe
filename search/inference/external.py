"""An exported model on patients it has never seen: `polarmap predict` (new patients, labels
optional) and `polarmap evaluate` (a labelled external set, the test figures with bootstrap
intervals).

The manifest is checked against the model before any compute (its views must include the
model's, its labels must be of the model's classes), every problem listed at once; the
exports are then cleaned through the map cache at the model's input size and normalized as
its backbone expects, exactly as in the search. A model folder with a conformal calibration
adds each patient's prediction set to the CSV (the classes the model cannot rule out); a
weighted ensemble has no calibration of its own (its members' do not cover their weighted
mean), so its CSV has none. Nothing here prints, and nothing imports Ray.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from results.conformal import ConformalSets
from search import errors
from search.data import (
    DEFAULT_MIN_SIZE,
    PRESET_CLASS_SETS,
    PRESET_MODES,
    ClassSet,
    Dataset,
    InputMode,
    Problem,
    check_dataset,
    format_problems,
)
from search.data.manifest import CLASS_SET_HINT
from search.data.map_cache import MapCache
from search.data.normalize import BackboneInput, backbone_input, normalize_maps
from search.data.preprocess import PreprocessSpec, preprocess_dataset
from search.errors import FinalizeError
from search.files import write_atomic
from search.inference.evaluate import EvaluationFigures, evaluate_predictions, predict_classes
from search.inference.export import Classifier, ExportedModel, predict_probabilities
from search.inference.weighted import WeightedEnsemble
from trainables.data import select_views
from trainables.metrics import METRICS

__all__ = [
    "EVALUATION_FORMAT",
    "ManifestProblems",
    "Predictions",
    "evaluate_manifest",
    "evaluation_record",
    "evaluation_table",
    "load_manifest_for_model",
    "model_class_set",
    "model_inputs",
    "model_mode",
    "predict_manifest",
    "predictions_csv",
    "write_predictions",
]

EVALUATION_FORMAT = "polarmap-evaluation/1"


class ManifestProblems(errors.DataError, ValueError):
    """The manifest does not fit the model; the message lists every problem, each with
    its file, row and field."""

    def __init__(self, source: str | os.PathLike[str], problems: list[Problem]):
        self.problems = problems
        lines = format_problems(problems)
        super().__init__(
            f"{source}: {len(problems)} problem(s) for this model, nothing was computed:\n"
            + "\n".join(f"  {line}" for line in lines)
        )


@dataclass(frozen=True)
class Predictions:
    """A model's class probabilities for the patients of a manifest, in manifest order.

    Args:
        patient_ids: as in the manifest.
        class_names: the model's classes, in index order.
        probabilities: (patients, classes) float32, each row summing to 1.
        predicted: (patients,) class index: the argmax, or for a binary model class 1 when
            its probability reaches `threshold`.
        labels: class index per patient (None where unlabelled); None when the manifest
            labels nobody.
        threshold: the binary model's threshold (chosen on validation), else None.
        conformal: the model's conformal calibration, None when it has none.
    """

    patient_ids: tuple[str, ...]
    class_names: tuple[str, ...]
    probabilities: np.ndarray
    predicted: np.ndarray
    labels: tuple[int | None, ...] | None
    threshold: float | None
    conformal: ConformalSets | None = None

    @property
    def sets(self) -> np.ndarray | None:
        """(patients, classes) bool: each patient's conformal prediction set, None
        without a calibration."""
        return None if self.conformal is None else self.conformal.predict(self.probabilities)

    def __len__(self) -> int:
        return len(self.patient_ids)


def model_class_set(class_names: tuple[str, ...]) -> ClassSet:
    """The model's classes as a class set: a preset when the names are a preset's (so its
    spellings, such as 'normal' for non-CAD, are accepted), else a custom set."""
    names = tuple(class_names)
    for preset in PRESET_CLASS_SETS.values():
        if preset.names == names:
            return preset
    return ClassSet("custom", names)


def model_mode(exported: ExportedModel | WeightedEnsemble) -> InputMode:
    """The model's views as an input mode, named as the search names it (`dual`...)."""
    for preset in PRESET_MODES.values():
        if preset.views == exported.views:
            return preset
    return InputMode("+".join(exported.views), exported.views)


def load_manifest_for_model(
    manifest: str | os.PathLike[str],
    exported: ExportedModel | WeightedEnsemble,
    require_labels: bool = True,
    min_size: int = DEFAULT_MIN_SIZE,
) -> Dataset:
    """Check a manifest for a model with the data check every command runs: the model's
    views must be columns with a readable image for every patient, and labels must be of
    the model's classes (every patient labelled unless `require_labels` is False).

    Raises:
        ManifestProblems: every error found, with its file, row and field.
    """
    report = check_dataset(
        manifest,
        class_set=model_class_set(exported.class_names),
        mode=model_mode(exported),
        splittable=False,
        min_size=min_size,
        require_labels=require_labels,
    )
    if report.dataset is None:
        # The class set is the model's: no --classes to choose another with.
        errors = [
            replace(p, message=p.message.replace(CLASS_SET_HINT, " (the model's classes)"))
            for p in report.errors
        ]
        raise ManifestProblems(report.source, errors)
    return report.dataset


def model_inputs(
    dataset: Dataset,
    exported: ExportedModel,
    cache: str | os.PathLike[str] | None = None,
    workers: int | None = None,
) -> torch.Tensor:
    """The model's input (patients, views, 3, size, size): exports cleaned at the model's
    input size (through the map cache) and normalized with its backbone's mean and std.

    Raises:
        DataError: listing every export that cannot be cleaned.
    """
    spec = PreprocessSpec(exported.input_size)
    cleaned = preprocess_dataset(
        dataset, spec, MapCache(cache), views=exported.views, workers=workers
    )
    norm = backbone_input(exported.config.backbone)
    inputs = BackboneInput(exported.input_size, norm.mean, norm.std)
    return normalize_maps(select_views(cleaned, exported.views), inputs)


def predict_manifest(
    model: Classifier | WeightedEnsemble,
    exported: ExportedModel | WeightedEnsemble,
    dataset: Dataset,
    cache: str | os.PathLike[str] | None = None,
    workers: int | None = None,
) -> Predictions:
    """The model's predictions for every patient of a checked data set; a weighted
    ensemble's are the weighted mean of its members' probabilities, each member reading
    the maps at its own views and input size.

    Raises:
        DataError: listing every export that cannot be cleaned.
    """

    def probabilities_of(model: Classifier, exported: ExportedModel) -> np.ndarray:
        x = model_inputs(dataset, exported, cache, workers)
        return predict_probabilities(model, x).numpy()

    conformal = None
    if isinstance(model, WeightedEnsemble):
        probabilities = sum(m.weight * probabilities_of(m.model, m.exported) for m in model.members)
    else:
        probabilities = probabilities_of(model, exported)
        conformal = exported.conformal
    labels = tuple(p.label for p in dataset.patients)
    return Predictions(
        patient_ids=tuple(p.patient_id for p in dataset.patients),
        class_names=tuple(exported.class_names),
        probabilities=probabilities,
        predicted=predict_classes(probabilities, exported.threshold),
        labels=labels if any(label is not None for label in labels) else None,
        threshold=exported.threshold,
        conformal=conformal,
    )


def predictions_csv(predictions: Predictions) -> str:
    """CSV text: patient_id, label (when the manifest has labels), predicted (class name),
    then probability_<class> per class; probabilities written to float32 precision. With a
    calibration, then prediction_set: the classes of the patient's conformal set, in class
    order, joined by '+' (empty when the set is)."""
    names = predictions.class_names
    sets = predictions.sets
    header = ["patient_id"] + (["label"] if predictions.labels is not None else [])
    header += ["predicted"] + [f"probability_{name}" for name in names]
    header += ["prediction_set"] if sets is not None else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for i, patient_id in enumerate(predictions.patient_ids):
        row = [patient_id]
        if predictions.labels is not None:
            label = predictions.labels[i]
            row.append(names[label] if label is not None else "")
        row.append(names[int(predictions.predicted[i])])
        row += [str(np.float32(p)) for p in predictions.probabilities[i]]
        if sets is not None:
            row.append("+".join(names[c] for c in np.flatnonzero(sets[i])))
        writer.writerow(row)
    return buffer.getvalue()


def write_predictions(path: str | os.PathLike[str], predictions: Predictions) -> Path:
    """Write `predictions_csv` to `path`, whole or not at all."""
    return write_atomic(path, predictions_csv(predictions))


def evaluate_manifest(
    predictions: Predictions, bootstrap: int = 1000, seed: int = 0
) -> EvaluationFigures:
    """The test figures of labelled predictions, with the model's threshold and bootstrap
    95 % intervals over the patients.

    Raises:
        ValueError: a patient has no label.
    """
    labels = predictions.labels
    if labels is None or any(label is None for label in labels):
        raise FinalizeError("evaluation needs a label for every patient")
    return evaluate_predictions(
        np.asarray(labels, dtype=np.int64),
        predictions.probabilities,
        predictions.class_names,
        predictions.threshold,
        bootstrap,
        seed,
    )


def evaluation_record(
    figures: EvaluationFigures,
    model: str | os.PathLike[str],
    dataset: Dataset,
    seed: int,
) -> dict[str, Any]:
    """`figures.json`: where the figures came from, then every field of the figures.
    Undefined figures (an AUC without both outcomes) are null, so any JSON reader takes it."""
    record = {
        "format": EVALUATION_FORMAT,
        "model": str(Path(model).resolve()),
        "manifest": str(dataset.source.resolve()),
        "data_fingerprint": dataset.fingerprint,
        "seed": seed,
        **asdict(figures),
    }
    return _json_ready(record)


def evaluation_table(figures: EvaluationFigures) -> str:
    """The figures as text: each metric's macro value with its 95 % interval and its value
    per class, the confusion matrix, the calibration error and the patient count."""
    names = figures.class_names
    widths = [max(len(n), 6) for n in names]

    def columns(cells) -> str:  # one right-aligned cell per class
        return "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))

    if figures.bootstrap:
        intervals = (
            "95 % intervals: exact for proportions, closed forms for balanced accuracy and "
            f"each class's AUC, {figures.bootstrap} bootstrap resamples within each class "
            "for the rest"
        )
    else:
        intervals = "95 % intervals: closed forms only (--bootstrap 0)"
    true_counts = [sum(row) for row in figures.confusion]
    lines = [
        f"{figures.count} patients; {intervals} (few patients give wide intervals)",
        "patients per true class: "
        + ", ".join(f"{n} {c}" for n, c in zip(names, true_counts, strict=True)),
        "",
    ]
    side = max(len(m) for m in METRICS)
    lines.append(f"{'metric':<{side}}  {'macro':>6}  {'95 % interval':<16}  {columns(names)}")
    for metric in METRICS:
        interval = figures.intervals.get(metric)
        shown = f"[{_num(interval[0])}, {_num(interval[1])}]" if interval else "-"
        per_class = figures.per_class.get(metric)
        values = columns(_num(v) for v in per_class) if per_class is not None else ""
        macro = _num(figures.macro[metric])
        lines.append(f"{metric:<{side}}  {macro:>6}  {shown:<16}  {values}".rstrip())

    lines += ["", "per class: value (count) [95 % interval]"]
    for name in names:
        cells = []
        for metric in ("sensitivity", "specificity", "precision", "npv", "roc_auc"):
            key = f"{metric}/{name}"
            value = figures.per_class[metric][names.index(name)]
            count = figures.counts.get(key)
            interval = figures.intervals.get(key)
            cells.append(
                f"{metric} {_num(value)}"
                + (f" ({count[0]}/{count[1]})" if count else "")
                + (f" [{_num(interval[0])}, {_num(interval[1])}]" if interval else "")
            )
        lines.append(f"  {name}: " + "; ".join(cells))

    side = max(len(n) for n in names)
    lines += ["", "confusion matrix (rows: true class, columns: predicted class)"]
    lines.append(f"{'':<{side}}  {columns(names)}")
    for name, row in zip(names, figures.confusion, strict=True):
        lines.append(f"{name:<{side}}  {columns(row)}")
    lines += ["", f"expected calibration error: {_num(figures.ece)}"]
    if figures.threshold is not None:
        lines.append(
            f"threshold: {names[1]} when its probability is at least "
            f"{figures.threshold:.3f} (chosen on the search's validation split)"
        )
    return "\n".join(lines)


def _num(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def _json_ready(value: Any) -> Any:
    """Plain JSON values: tuples as lists, numpy scalars as numbers, NaN and infinities
    as null, anything else (a timestamp) as text."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_ready(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return str(value)
