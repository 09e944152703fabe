"""`polarmap predict` and `polarmap evaluate`: an exported model on new patients (class
probabilities as CSV, with each patient's conformal prediction set when the model carries a
calibration) or on a labelled external set (the test figures with intervals)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from search.commands.options import (
    UsageError,
    add_cache_option,
    non_negative_int,
    positive_int,
    seed_number,
)
from search.data import DEFAULT_MIN_SIZE

if TYPE_CHECKING:
    from results.conformal import ConformalSets

__all__ = ["register"]

SETS_HELP = (
    "When the model folder holds a conformal calibration (conformal.json, written by "
    "polarmap finalize), a last column, prediction_set, gives each patient's set: the "
    "classes the model cannot rule out at level 1 - alpha, joined by '+' in class order "
    "(empty: every class ruled out). It is calibrated per class on the search's out-of-fold "
    "patients, so that a patient of each class, drawn like them, has that class in the "
    "set at least 1 - alpha of the time; alpha is the calibration's (printed with the "
    "output). A set of one class is a confident call, a larger set a doubt among "
    "its classes. Models exported without a calibration, and greedy ensembles (whose "
    "weighted mean no calibration covers), write no sets."
)

MANIFEST_HELP = (
    "manifest CSV: patient_id, one <view>_path column per view of the model (paths "
    "relative to the manifest's folder), label, metadata..."
)


def register(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="class probabilities of an exported model for new patients, as CSV (with "
        "conformal prediction sets when the model is calibrated)",
        description="Check the manifest against the model (its views must include the "
        "model's; labels are optional, but a label given must be one of the model's "
        "classes), listing every problem before any compute; clean the exports at the "
        "model's input size through the map cache; write one row per patient, in manifest "
        "order: patient_id, label (when the manifest has labels), predicted, "
        "probability_<class> per class. A binary model calls class 1 from its threshold. "
        + SETS_HELP,
    )
    _add_common(predict)
    predict.add_argument(
        "--out", type=Path, default=Path("predictions.csv"),
        help="CSV to write (default predictions.csv in the current folder)",
    )  # fmt: skip
    predict.set_defaults(func=run_predict, parser=predict)

    evaluate = commands.add_parser(
        "evaluate",
        help="test figures of an exported model on a labelled external set",
        description="As predict, but every patient must carry a label of the model's "
        "classes. Prints accuracy, balanced accuracy, sensitivity, specificity, precision, "
        "F1 and ROC AUC (macro and per class, with 95 % intervals over patients: exact with "
        "the counts for proportions, a bootstrap within each class where no closed form "
        "exists), the confusion matrix, the expected calibration error and the patient "
        "count; writes OUT/predictions.csv (as predict writes it, prediction sets included), "
        "OUT/figures.json and ROC, calibration and confusion plots.",
    )
    _add_common(evaluate)
    evaluate.add_argument(
        "--out", type=Path, default=Path("evaluation"),
        help="folder to write predictions.csv, figures.json and the plots into "
        "(default ./evaluation)",
    )  # fmt: skip
    evaluate.add_argument(
        "--bootstrap", type=non_negative_int, default=1000,
        help="bootstrap resamples for the figures without a closed-form interval (default "
        "1000; 0: closed forms only)",
    )  # fmt: skip
    evaluate.add_argument("--seed", type=seed_number, default=0, help="bootstrap seed (default 0)")
    evaluate.set_defaults(func=run_evaluate, parser=evaluate)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL_DIR", type=Path,
                        help="a model folder written by polarmap finalize, or its "
                        "greedy ensemble's folder (OUT/ensemble, with ensemble.json)")  # fmt: skip
    parser.add_argument("manifest", metavar="MANIFEST", type=Path, help=MANIFEST_HELP)
    add_cache_option(parser)
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="cleaning processes (default: one per core)",
    )
    parser.add_argument(
        "--min-size", type=positive_int, default=DEFAULT_MIN_SIZE,
        help=f"smallest accepted image side in pixels (default {DEFAULT_MIN_SIZE})",
    )  # fmt: skip


def run_predict(args: argparse.Namespace) -> int:
    from search.inference.external import predict_manifest, write_predictions

    if args.out.is_dir():
        raise UsageError(f"--out {args.out}: a folder; give the CSV file to write")
    model, exported, dataset = _checked(args, require_labels=False)
    predictions = predict_manifest(model, exported, dataset, args.cache, args.workers)
    write_predictions(args.out, predictions)
    labelled = "" if predictions.labels is None else ", with their labels"
    print(f"wrote {args.out}: {len(predictions)} patients{labelled}")
    if predictions.conformal is not None:
        print(_sets_line(predictions.conformal, predictions.class_names))
    return 0


def _sets_line(conformal: ConformalSets, class_names: tuple[str, ...]) -> str:
    """What the prediction_set column promises, and on how many patients per class."""
    counts = ", ".join(f"{n} {c}" for c, n in zip(class_names, conformal.counts, strict=True))
    line = (
        f"prediction_set: the classes not ruled out at {100 * (1 - conformal.alpha):g} % "
        f"(alpha {conformal.alpha:g}), calibrated per class on out-of-fold patients ({counts})"
    )
    too_few = [class_names[i] for i in conformal.too_few()]
    if too_few:
        line += f"; always in the set (too few calibration patients): {', '.join(too_few)}"
    return line


def run_evaluate(args: argparse.Namespace) -> int:
    from search.files import write_json_atomic
    from search.inference.external import (
        evaluate_manifest,
        evaluation_record,
        evaluation_table,
        predict_manifest,
        write_predictions,
    )
    from search.reporting.plots import save_evaluation_plots

    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: a file; give the folder to write into")
    model, exported, dataset = _checked(args, require_labels=True)
    predictions = predict_manifest(model, exported, dataset, args.cache, args.workers)
    figures = evaluate_manifest(predictions, args.bootstrap, args.seed)
    print(f"{args.model} on {args.manifest}")
    print(evaluation_table(figures))
    written = [
        write_predictions(args.out / "predictions.csv", predictions),
        write_json_atomic(
            args.out / "figures.json", evaluation_record(figures, args.model, dataset, args.seed)
        ),
        *save_evaluation_plots(figures, args.out),
    ]
    print(f"wrote {', '.join(p.name for p in written)} in {args.out}")
    return 0


def _checked(args: argparse.Namespace, require_labels: bool):
    """The model, what its folder says of it, and the manifest checked against it; every
    problem a usage error (exit status 2) before any compute."""
    from search.inference.export import load_model
    from search.inference.external import ManifestProblems, load_manifest_for_model
    from search.inference.weighted import is_ensemble_folder, load_weighted_ensemble

    try:
        if is_ensemble_folder(args.model):  # a greedy ensemble: its members, weighted
            model = exported = load_weighted_ensemble(args.model)
        else:
            model, exported = load_model(args.model)
    except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:  # not a model folder
        raise UsageError(f"MODEL_DIR {args.model}: {exc}") from exc
    try:
        dataset = load_manifest_for_model(args.manifest, exported, require_labels, args.min_size)
    except ManifestProblems as exc:
        raise UsageError(str(exc)) from exc
    return model, exported, dataset
