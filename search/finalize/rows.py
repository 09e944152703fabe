"""A finalized model's rows of the `finals` and `final_class_metrics` tables."""

from __future__ import annotations

import json
import math
from typing import Any

from results.records import FinalRow
from search.records import Conformal, FinalModel
from trainables.metrics import METRICS

__all__ = ["final_rows"]


def final_rows(search: str, final: FinalModel, search_row: dict) -> dict[str, list[dict]]:
    """The model's row of `finals` and its rows of `final_class_metrics`."""
    f, trial = final.figures, final.trial
    row: dict[str, Any] = {
        "search": search, "trial_id": trial["trial_id"], "backbone": trial["backbone"],
        "mode": trial["mode"], "seed": final.seed, "threshold": f.threshold,
        "test_patients": f.count, "bootstrap": f.bootstrap, "test_ece": f.ece,
        "confusion": json.dumps(f.confusion),
        "cam_territory_match": final.cams.match_rate,
        "cam_territory_baseline": final.cams.match_baseline,
        "cam_territory_patients": final.cams.match_patients,
        "val_selection": final.validation.get("val_" + str(trial.get("selection_metric"))),
        "best_epoch": final.validation.get("epoch"), "model_dir": str(final.folder),
        "data_fingerprint": search_row.get("data_fingerprint"),
        "test_fingerprint": search_row.get("test_fingerprint"),
        "wall_seconds": f.extra.get("wall_seconds"), "device": f.extra.get("device"),
        "started": f.extra.get("started"), "ended": f.extra.get("ended"),
    }  # fmt: skip
    for metric in METRICS:
        low, high = f.intervals.get(metric, (None, None))
        row.update({f"test_{metric}": f.macro[metric], f"test_{metric}_low": low,
                    f"test_{metric}_high": high})  # fmt: skip
    cv = final.cross_validated
    row.update(members=final.members, refit=final.refit, cv_patients=cv.count if cv else None)
    for metric in METRICS:
        low, high = cv.intervals.get(metric, (None, None)) if cv else (None, None)
        row.update({f"cv_{metric}": cv.macro[metric] if cv else None, f"cv_{metric}_low": low,
                    f"cv_{metric}_high": high})  # fmt: skip
    per_class = [
        {"search": search, "trial_id": trial["trial_id"], "seed": final.seed, "class": cls,
         "metric": metric, "value": values[c],
         "low": f.intervals.get(f"{metric}/{cls}", (None, None))[0],
         "high": f.intervals.get(f"{metric}/{cls}", (None, None))[1],
         "numerator": f.counts.get(f"{metric}/{cls}", (None, None))[0],
         "denominator": f.counts.get(f"{metric}/{cls}", (None, None))[1],
         "interval_method": f.interval_methods.get(f"{metric}/{cls}")}
        for metric, values in f.per_class.items()
        for c, cls in enumerate(f.class_names)
    ]  # fmt: skip
    subgroups = [{"search": search, "trial_id": trial["trial_id"], "seed": final.seed, **r}
                 for r in final.subgroups]  # fmt: skip
    typed = FinalRow.from_row(row).to_row()  # every column; a misspelt key is refused
    mark = {"search": search, "trial_id": trial["trial_id"], "seed": final.seed}
    return {"finals": [typed], "final_class_metrics": per_class, "final_subgroups": subgroups,
            "final_conformal": _conformal_rows(mark, final.conformal),
            "final_explanations": [{**mark, **_plain(r)}
                                   for r in final.cams.checks.to_dict("records")]}  # fmt: skip


def _conformal_rows(mark: dict, conformal: Conformal | None) -> list[dict]:
    """Per class and `all`: the calibration count and the test patients' coverage."""
    if conformal is None:
        return []
    calibration = {**conformal.calibration, "all": sum(conformal.calibration.values())}
    return [
        {**mark, "alpha": conformal.alpha, "class": r["class"],
         "calibration_patients": calibration[r["class"]],
         "too_few": r["class"] in conformal.too_few, "test_patients": r["patients"],
         "covered": r["covered"], "coverage": r["coverage"],
         "coverage_low": r["coverage_lower"], "coverage_high": r["coverage_upper"],
         "mean_set_size": r["mean_set_size"], "singleton_share": r["singleton_share"]}
        for r in conformal.coverage.to_dict("records")
    ]  # fmt: skip


def _plain(record: dict) -> dict:
    """NaN and pandas' missing values as None (a null in the table)."""
    return {k: None if v is None or (isinstance(v, float) and math.isnan(v)) else v
            for k, v in record.items()}  # fmt: skip
