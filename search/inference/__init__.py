"""Inference: what an exported model does with new patients. Exported models (one model or
a fold ensemble, `export`), weighted ensembles of them (`weighted`), predictions and the
test figures of a labelled set (`external`, `evaluate`: `polarmap predict` and `polarmap
evaluate`). Nothing here selects, trains or reports: finalize uses it, as the commands do.

The names below are imported when first used, not with the package: the figures
(`evaluate`) need no torch, so the reports read them without loading it."""

from importlib import import_module
from typing import Any

_HOMES = {
    "EvaluationFigures": "search.inference.evaluate",
    "choose_threshold": "search.inference.evaluate",
    "evaluate_predictions": "search.inference.evaluate",
    "predict_classes": "search.inference.evaluate",
    "ExportedModel": "search.inference.export",
    "load_model": "search.inference.export",
    "predict_probabilities": "search.inference.export",
    "save_model": "search.inference.export",
    "ManifestProblems": "search.inference.external",
    "Predictions": "search.inference.external",
    "evaluate_manifest": "search.inference.external",
    "load_manifest_for_model": "search.inference.external",
    "predict_manifest": "search.inference.external",
    "WeightedEnsemble": "search.inference.weighted",
    "is_ensemble_folder": "search.inference.weighted",
    "load_weighted_ensemble": "search.inference.weighted",
}

__all__ = sorted(_HOMES, key=lambda name: (not name[0].isupper(), name))


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'search.inference' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return __all__
