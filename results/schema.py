"""The result tables' schemas: one typed column per fact, the same whatever the class set
(per-class figures go to a long table). Versioned in each file's metadata."""

from __future__ import annotations

import pyarrow as pa

from trainables.metrics import METRICS

__all__ = ["MACRO_METRICS", "SCHEMA_VERSION", "TABLES", "schema"]

SCHEMA_VERSION = "1"

MACRO_METRICS = METRICS  # accuracy, balanced accuracy, sensitivity, ..., ROC AUC

_STAMP = pa.timestamp("ms", tz="UTC")

_SEARCHES = [
    ("search", pa.string()),
    ("space", pa.string()),
    ("space_digest", pa.string()),
    ("data_fingerprint", pa.string()),
    ("split_seed", pa.int64()),
    ("split", pa.string()),
    ("test_fingerprint", pa.string()),
    ("classes", pa.string()),
    ("class_mapping", pa.string()),
    ("scheduler", pa.string()),
    ("reduction_factor", pa.int64()),
    ("sampler", pa.string()),
    ("samples_per_pair", pa.int64()),
    ("max_epochs", pa.int64()),
    ("cpus_per_trial", pa.float64()),
    ("gpus_per_trial", pa.float64()),
    ("library_versions", pa.string()),
    ("git_revision", pa.string()),
    ("started", _STAMP),
    ("ended", _STAMP),
    ("status", pa.string()),
    ("nested_in", pa.string()),
    ("outer_fold", pa.int64()),
    ("outer_folds", pa.int64()),
]

_TRIALS = [
    ("search", pa.string()),
    ("trial_id", pa.string()),
    ("backbone", pa.string()),
    ("mode", pa.string()),
    ("width", pa.int64()),
    ("depth", pa.int64()),
    ("dropout", pa.float64()),
    ("a", pa.float64()),
    ("warmup_lr", pa.float64()),
    ("finetune_lr", pa.float64()),
    ("requested_unfreeze", pa.int64()),
    ("effective_unfreeze", pa.int64()),
    ("trainable_share", pa.float64()),
    ("warmup_epochs", pa.int64()),
    ("finetune_epochs", pa.int64()),
    ("batch_size", pa.int64()),
    ("augment", pa.string()),
    ("compute_path_warmup", pa.string()),
    ("compute_path_finetune", pa.string()),
    ("frozen_read", pa.int64()),
    ("frozen_computed", pa.int64()),
    ("best_warmup_epoch", pa.int64()),
    ("best_finetune_epoch", pa.int64()),
    ("best_epoch", pa.int64()),
    ("selection_metric", pa.string()),
    ("best_selection", pa.float64()),
    *[(f"best_val_{m}", pa.float64()) for m in MACRO_METRICS],
    ("best_val_loss", pa.float64()),
    ("folds", pa.int64()),
    ("repeats", pa.int64()),
    *[(f"best_val_{m}_sd", pa.float64()) for m in MACRO_METRICS],
    *[(f"best_oof_{m}", pa.float64()) for m in MACRO_METRICS],
    ("status", pa.string()),
    ("error", pa.string()),
    ("epochs_run", pa.int64()),
    ("wall_seconds", pa.float64()),
    ("device", pa.string()),
    ("cpus", pa.float64()),
    ("gpus", pa.float64()),
    ("node", pa.string()),
    ("node_id", pa.string()),
    ("failures", pa.int64()),
    ("seed", pa.int64()),
    ("threads", pa.int64()),
    ("started", _STAMP),
    ("ended", _STAMP),
    ("config", pa.string()),
]

_EPOCHS = [
    ("search", pa.string()),
    ("trial_id", pa.string()),
    ("epoch", pa.int64()),
    ("stage", pa.string()),
    ("stage_epoch", pa.int64()),
    ("train_loss", pa.float64()),
    ("train_accuracy", pa.float64()),
    ("val_loss", pa.float64()),
    *[(f"val_{m}", pa.float64()) for m in MACRO_METRICS],
    *[(f"val_{m}_sd", pa.float64()) for m in MACRO_METRICS],
    *[(f"oof_{m}", pa.float64()) for m in MACRO_METRICS],
    ("best_selection", pa.float64()),
    ("epoch_seconds", pa.float64()),
    ("node_id", pa.string()),
]

_FOLD_EPOCHS = [
    ("search", pa.string()),
    ("trial_id", pa.string()),
    ("epoch", pa.int64()),
    ("repeat", pa.int64()),
    ("fold", pa.int64()),
    ("val_loss", pa.float64()),
    *[(f"val_{m}", pa.float64()) for m in MACRO_METRICS],
]

_PREDICTIONS = [
    ("search", pa.string()),
    ("trial_id", pa.string()),
    ("epoch", pa.int64()),
    ("patient_id", pa.string()),
    ("repeat", pa.int64()),
    ("fold", pa.int64()),
    ("label", pa.string()),
    ("predicted", pa.string()),
    ("probabilities", pa.list_(pa.float64())),
]

_CLASS_METRICS = [
    ("search", pa.string()),
    ("trial_id", pa.string()),
    ("epoch", pa.int64()),
    ("class", pa.string()),
    ("metric", pa.string()),
    ("value", pa.float64()),
]

_FINALS = [
    ("search", pa.string()),
    ("trial_id", pa.string()),
    ("backbone", pa.string()),
    ("mode", pa.string()),
    ("seed", pa.int64()),
    ("threshold", pa.float64()),
    ("test_patients", pa.int64()),
    ("bootstrap", pa.int64()),
    *[
        column
        for m in MACRO_METRICS
        for column in (
            (f"test_{m}", pa.float64()),
            (f"test_{m}_low", pa.float64()),
            (f"test_{m}_high", pa.float64()),
        )
    ],
    ("test_ece", pa.float64()),
    ("members", pa.int64()),
    ("refit", pa.bool_()),
    ("cv_patients", pa.int64()),
    *[
        column
        for m in MACRO_METRICS
        for column in (
            (f"cv_{m}", pa.float64()),
            (f"cv_{m}_low", pa.float64()),
            (f"cv_{m}_high", pa.float64()),
        )
    ],
    ("confusion", pa.string()),
    ("cam_territory_match", pa.float64()),
    ("cam_territory_baseline", pa.float64()),
    ("cam_territory_patients", pa.int64()),
    ("val_selection", pa.float64()),
    ("best_epoch", pa.int64()),
    ("model_dir", pa.string()),
    ("data_fingerprint", pa.string()),
    ("test_fingerprint", pa.string()),
    ("wall_seconds", pa.float64()),
    ("device", pa.string()),
    ("started", _STAMP),
    ("ended", _STAMP),
]

_FINAL_CLASS_METRICS = [
    ("search", pa.string()),
    ("trial_id", pa.string()),
    ("seed", pa.int64()),
    ("class", pa.string()),
    ("metric", pa.string()),
    ("value", pa.float64()),
    ("low", pa.float64()),
    ("high", pa.float64()),
    ("numerator", pa.int64()),
    ("denominator", pa.int64()),
    ("interval_method", pa.string()),
]

_FINAL_SUBGROUPS = [
    ("search", pa.string()),
    ("trial_id", pa.string()),
    ("seed", pa.int64()),
    ("attribute", pa.string()),
    ("group", pa.string()),
    ("patients", pa.int64()),
    ("metric", pa.string()),
    ("value", pa.float64()),
]

_FINAL_CONFORMAL = [
    ("search", pa.string()),
    ("trial_id", pa.string()),
    ("seed", pa.int64()),
    ("alpha", pa.float64()),
    ("class", pa.string()),
    ("calibration_patients", pa.int64()),
    ("too_few", pa.bool_()),
    ("test_patients", pa.int64()),
    ("covered", pa.int64()),
    ("coverage", pa.float64()),
    ("coverage_low", pa.float64()),
    ("coverage_high", pa.float64()),
    ("mean_set_size", pa.float64()),
    ("singleton_share", pa.float64()),
]

_FINAL_EXPLANATIONS = [
    ("search", pa.string()),
    ("trial_id", pa.string()),
    ("seed", pa.int64()),
    ("view", pa.string()),
    ("check", pa.string()),
    ("attribution", pa.string()),
    ("value", pa.float64()),
    ("low", pa.float64()),
    ("high", pa.float64()),
    ("patients", pa.int64()),
    ("flagged", pa.bool_()),
    ("seconds", pa.float64()),
]

_DECISION_CURVES = [
    ("search", pa.string()),
    ("model", pa.string()),
    ("trial_id", pa.string()),
    ("seed", pa.int64()),
    ("positive_class", pa.string()),
    ("patients", pa.int64()),
    ("threshold", pa.float64()),
    ("net_benefit", pa.float64()),
    ("treat_all", pa.float64()),
    ("treat_none", pa.float64()),
]

_COMPARISONS = [
    ("search", pa.string()),
    ("kind", pa.string()),
    ("model_a", pa.string()),
    ("trial_a", pa.string()),
    ("model_b", pa.string()),
    ("trial_b", pa.string()),
    ("metric", pa.string()),
    ("class", pa.string()),
    ("figure", pa.string()),
    ("value_a", pa.float64()),
    ("value_b", pa.float64()),
    ("difference", pa.float64()),
    ("low", pa.float64()),
    ("high", pa.float64()),
    ("p_value", pa.float64()),
    ("p_holm", pa.float64()),
    ("method", pa.string()),
    ("interval_method", pa.string()),
    ("resamples", pa.int64()),
    ("a_only", pa.int64()),
    ("b_only", pa.int64()),
    ("discordant", pa.int64()),
    ("discordant_by_class", pa.list_(pa.int64())),
    ("evidence", pa.string()),
    ("patients", pa.int64()),
    ("patient_set", pa.string()),
    ("seed", pa.int64()),
    ("supported", pa.bool_()),
]

_OUTER_PREDICTIONS = [
    ("search", pa.string()),
    ("model", pa.string()),
    ("backbone", pa.string()),
    ("mode", pa.string()),
    ("outer_fold", pa.int64()),
    ("outer_search", pa.string()),
    ("trial_id", pa.string()),
    ("patient_id", pa.string()),
    ("label", pa.int64()),
    ("predicted", pa.int64()),
    ("probabilities", pa.list_(pa.float64())),
]

_ENSEMBLES = [
    ("search", pa.string()),
    ("trial_id", pa.string()),
    ("backbone", pa.string()),
    ("mode", pa.string()),
    ("weight", pa.float64()),
    ("metric", pa.string()),
    ("rounds", pa.int64()),
    ("rounds_kept", pa.int64()),
    ("candidates", pa.int64()),
    ("selection_loss", pa.float64()),
    ("best_single_loss", pa.float64()),
    ("seed", pa.int64()),
    ("test_patients", pa.int64()),
    ("test_balanced_accuracy", pa.float64()),
    ("test_roc_auc", pa.float64()),
    ("model_dir", pa.string()),
]

TABLES = {
    "searches": _SEARCHES,
    "trials": _TRIALS,
    "epochs": _EPOCHS,
    "class_metrics": _CLASS_METRICS,
    "fold_epochs": _FOLD_EPOCHS,
    "predictions": _PREDICTIONS,
    "finals": _FINALS,
    "final_class_metrics": _FINAL_CLASS_METRICS,
    "final_subgroups": _FINAL_SUBGROUPS,
    "final_conformal": _FINAL_CONFORMAL,
    "final_explanations": _FINAL_EXPLANATIONS,
    "decision_curves": _DECISION_CURVES,
    "comparisons": _COMPARISONS,
    "outer_predictions": _OUTER_PREDICTIONS,
    "ensembles": _ENSEMBLES,
}


def schema(table: str) -> pa.Schema:
    """The Arrow schema of `table`, with the schema version in its metadata."""
    return pa.schema(
        TABLES[table], metadata={"polarmap.schema_version": SCHEMA_VERSION, "polarmap.table": table}
    )
