"""One winner with one seed: retrained by the retrainer of its kind, tested once on the
held-out patients, explained (Grad-CAM), and exported with its model card."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from results.conformal import calibrate_sets, coverage_table, least_calibration
from search.data.normalize import backbone_input
from search.explanation.explain import TestPatients, explain_model
from search.finalize.retrain import Retrained, WinnerToRetrain, label_shuffled, retrain
from search.finalize.settings import FinalizeSettings
from search.inference.evaluate import choose_threshold, evaluate_predictions, predict_classes
from search.inference.export import ExportedModel, predict_probabilities, save_model
from search.inference.external import Predictions, write_predictions
from search.provenance import provenance
from search.records import Conformal, FinalModel
from search.reporting.model_card import model_card
from search.reporting.plots import save_evaluation_plots
from search.reporting.tables import subgroup_rows
from search.tuning.prepare import PreparedSearch
from trainables.config import TrialConfig

__all__ = ["finalize_winner"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Tested:
    """A retrained model's one test: its threshold, probabilities and calls."""

    threshold: float | None
    probabilities: np.ndarray
    predicted: np.ndarray


def finalize_winner(
    trial: dict[str, Any],
    offset: int,
    settings: FinalizeSettings,
    prepared: PreparedSearch,
    patients: TestPatients,
    out: Path,
    panels: bool = True,
) -> FinalModel:
    """The winner `trial` (its trials row) retrained with its seed + `offset`, tested once
    on `patients`, explained and exported into `out/<backbone>-<mode>-<trial>/seed-<n>`;
    CAM panels drawn for the first seed only (`panels`)."""
    flat = json.loads(trial["config"])
    seed = int(flat.get("seed", 0)) + offset
    config = TrialConfig.from_flat({**flat, "seed": seed, "threads": settings.threads})
    started, clock = datetime.now(UTC), time.perf_counter()
    data = prepared.data
    winner = WinnerToRetrain(config, data.for_trial(config.backbone, config.views), trial,
                             settings.results, data.class_names)  # fmt: skip
    retrained = retrain(winner, settings.refit)
    tested = _test_once(retrained, patients, data.class_names)
    figures = evaluate_predictions(patients.labels, tested.probabilities, data.class_names,
                                   tested.threshold, settings.bootstrap, seed)  # fmt: skip
    cross_validated = (
        evaluate_predictions(retrained.validation_labels, retrained.validation_probabilities,
                             data.class_names, tested.threshold, settings.bootstrap, seed)
        if retrained.cross_validated
        else None
    )  # fmt: skip
    figures.extra.update(
        wall_seconds=time.perf_counter() - clock, started=started, ended=datetime.now(UTC),
        device="cuda" if torch.cuda.is_available() else "CPU",
    )  # fmt: skip
    folder = out / f"{trial['backbone']}-{trial['mode']}-{trial['trial_id']}" / f"seed-{seed}"
    conformal = _conformal(retrained, tested, patients, data.class_names, settings, seed)
    # Panels and the label-shuffled twin for the first seed only: the reader looks at one
    # model per winner; the segment statistics and the territory check are taken for every
    # seed.
    first = panels and offset == 0
    twin_clock = time.perf_counter()
    shuffled = label_shuffled(winner, seed) if first and patients.annotated() else None
    cams = explain_model(retrained.model, patients, tested.probabilities, tested.predicted,
                         data.class_names, folder / "cams", panels=first, shuffled=shuffled,
                         seed=seed, faithfulness=first,
                         shuffled_seconds=time.perf_counter() - twin_clock)  # fmt: skip
    plots = dict(zip(("roc", "calibration", "confusion"),
                     save_evaluation_plots(figures, folder / "figures"), strict=True))  # fmt: skip
    write_predictions(folder / "test-predictions.csv", Predictions(
        patients.ids, data.class_names, tested.probabilities, tested.predicted,
        tuple(patients.labels), tested.threshold, conformal=conformal.calibrated,
    ))  # fmt: skip
    subgroups = subgroup_rows(patients.labels, tested.probabilities, patients.metadata,
                              tested.threshold)  # fmt: skip
    final = FinalModel(trial, seed, folder, figures, retrained.best, patients.ids,
                       tested.probabilities, tested.predicted, cams, subgroups, plots,
                       cross_validated, retrained.members,
                       retrained.kind == "refit", conformal)  # fmt: skip
    exported = _exported(trial, seed, retrained, tested.threshold, prepared, conformal)
    save_model(folder, retrained.model, exported, model_card(final, exported))
    return final


def _conformal(
    retrained: Retrained,
    tested: _Tested,
    patients: TestPatients,
    class_names: tuple[str, ...],
    settings: FinalizeSettings,
    seed: int,
) -> Conformal:
    """Prediction sets calibrated per class on the model's out-of-fold (or validation)
    patients, and their coverage on the test patients; a class too small to be ruled out
    at the level is warned about."""
    alpha = settings.conformal_alpha
    calibrated = calibrate_sets(retrained.validation_probabilities, retrained.validation_labels,
                                alpha, seed)  # fmt: skip
    too_few = tuple(class_names[c] for c in calibrated.too_few())
    for name in too_few:
        count = calibrated.counts[class_names.index(name)]
        log.warning(
            "prediction sets: class %s has %d calibration patients; at alpha %g a class "
            "needs %d to be ruled out, so every set holds %s", name, count, alpha,
            least_calibration(alpha), name,
        )  # fmt: skip
    sets = calibrated.predict(tested.probabilities)
    coverage = coverage_table(sets, patients.labels, list(class_names))
    return Conformal(alpha, dict(zip(class_names, calibrated.counts, strict=True)), too_few,
                     sets, coverage, calibrated)  # fmt: skip


def _test_once(retrained: Retrained, patients: TestPatients, class_names) -> _Tested:
    """The one test: a binary threshold chosen on the validation predictions (never on the
    test patients), then the test patients' probabilities and calls."""
    binary = len(class_names) == 2
    threshold = (
        choose_threshold(retrained.validation_labels, retrained.validation_probabilities)
        if binary
        else None
    )
    probabilities = predict_probabilities(retrained.model, patients.x).numpy()
    return _Tested(threshold, probabilities, predict_classes(probabilities, threshold))


def _exported(
    trial: dict[str, Any],
    seed: int,
    retrained: Retrained,
    threshold: float | None,
    prepared: PreparedSearch,
    conformal: Conformal,
) -> ExportedModel:
    """What the model's folder says of it (config.json): its configuration, classes,
    input size, threshold and where it came from; and its calibration (conformal.json)."""
    config, split = retrained.config, prepared.split
    return ExportedModel(
        trial=config.to_flat(),
        class_names=prepared.data.class_names,
        input_size=backbone_input(config.backbone).size,
        threshold=threshold,
        members=retrained.members,
        provenance={"search": trial["search"], "trial_id": trial["trial_id"], "seed": seed,
                    "test_fingerprint": split.test_fingerprint,
                    "split": {part: len(getattr(split, part)) for part in ("train", "val", "test")},
                    "data_fingerprint": prepared.dataset.fingerprint, **provenance()},
        conformal=conformal.calibrated,
    )  # fmt: skip
