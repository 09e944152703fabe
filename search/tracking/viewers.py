"""The commands that open a search in the tools researchers already use, as printed for
them when a search starts and when the demo ends."""

from __future__ import annotations

from search.files import join_location

__all__ = ["JOURNAL_FILE", "TENSORBOARD_FOLDER", "viewer_commands"]

TENSORBOARD_FOLDER = "tensorboard"  # EXPERIMENT/tensorboard/<backbone>-<mode>/<trial id>/
JOURNAL_FILE = "optuna.journal"  # EXPERIMENT/optuna.journal: a study per pair


def viewer_commands(experiment: str, mlflow: str | None = None) -> str:
    """Lines naming how to watch the search in `experiment` (its folder or URI) live and
    afterwards: TensorBoard, optuna-dashboard and, when it is tracked there, MLflow's UI.
    Each serves on 127.0.0.1 unless told otherwise."""
    journal = join_location(experiment, JOURNAL_FILE)
    if "://" in experiment:  # TensorBoard reads s3:// itself (its endpoint: $S3_ENDPOINT)
        lines = [
            "watch it (docs/tracking.md):",
            f"  tensorboard --logdir {experiment.partition('?')[0]}",
            f"  optuna-dashboard optuna.journal  (a copy of {journal})",
        ]
    else:
        lines = [
            "watch it (docs/tracking.md):",
            f"  tensorboard --logdir {experiment}",
            f"  optuna-dashboard {journal}",
        ]
    if mlflow and mlflow.startswith(("sqlite:", "postgresql:", "mysql:")):
        lines.append(f"  mlflow ui --backend-store-uri {mlflow}")
    elif mlflow:
        lines.append(f"  MLflow: {mlflow}")
    return "\n".join(lines)
