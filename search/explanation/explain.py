"""Where a finalized model looked: Grad-CAMs of every test patient and view, summarized on
the AHA 17-segment model, checked against the synthetic ground truth where there is one,
and drawn for the reader.

Two CAMs answer two questions. The panels show the CAM of the *predicted* class (what the
model argued for, as in the seeds' figures); the territory check uses the CAM of the
*true* disease class, so a missed defect still counts: does the model's evidence for the
disease lie in the diseased territory?
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from results.plots import figure_bytes, save_png
from search.errors import FinalizeError
from search.explanation.cams import grad_cams
from search.explanation.faithfulness import randomisation_check, road_curves
from search.explanation.localisation import bootstrap_interval, localisation_figures
from search.explanation.overlays import cam_panel_figure
from search.explanation.segments import (
    TERRITORY_NAMES,
    bullseye_figure,
    hottest_territory,
    segment_means,
    territory_match,
    territory_means,
)
from search.files import write_atomic, write_json_atomic
from search.records import CHECK_COLUMNS, CamFindings
from trainables.ensemble import ModelEnsemble
from trainables.model import PolarMapNet

__all__ = ["TestPatients", "explain_model", "read_defect_territories"]

SEGMENT_COLUMNS = [f"segment_{s}" for s in range(1, 18)]


@dataclass(frozen=True)
class TestPatients:
    """The held-out patients as a model sees them and as a reader sees them."""

    ids: tuple[str, ...]
    x: torch.Tensor  # (N, V, 3, H, W), normalized for the backbone
    maps: np.ndarray  # (N, V, H, W, 3) uint8 cleaned maps (no burned-in text)
    labels: np.ndarray  # (N,) class indices
    views: tuple[str, ...]
    territories: dict[str, str] = field(default_factory=dict)  # id -> true defect territory
    metadata: dict[str, list[str]] = field(default_factory=dict)  # manifest column -> values
    # a reader's annotations (`<view>_territory`, `<view>_scores`): id -> view -> value
    reader_territories: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    reader_scores: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)

    def annotated(self) -> list[int]:
        """The patients a reader annotated in any of the views, by index."""
        return [i for i, pid in enumerate(self.ids)
                if any(v in self.reader_territories.get(pid, {})
                       or v in self.reader_scores.get(pid, {}) for v in self.views)]  # fmt: skip


def read_defect_territories(truth_folder: Path, ids: tuple[str, ...]) -> dict[str, str]:
    """Each patient's true defect territory from `truth/<patient>.json` sidecars (written by
    `polarmap data synth`); patients without a sidecar or a defect are left out."""
    territories = {}
    for pid in ids:
        path = truth_folder / f"{pid}.json"
        if not path.is_file():
            continue
        try:
            defect = json.loads(path.read_text()).get("defect") or {}
        except json.JSONDecodeError as exc:
            raise FinalizeError(f"{path}: not valid JSON ({exc})") from exc
        if defect.get("territory") in TERRITORY_NAMES:
            territories[pid] = defect["territory"]
    return territories


def explain_model(
    model: PolarMapNet | ModelEnsemble,
    patients: TestPatients,
    probabilities: np.ndarray,
    predicted: np.ndarray,
    class_names: tuple[str, ...],
    folder: Path,
    panels: bool = True,
    shuffled: PolarMapNet | ModelEnsemble | None = None,
    seed: int = 0,
    faithfulness: bool = False,
    shuffled_seconds: float = 0.0,
) -> CamFindings:
    """CAMs of every test patient and view, their 17-segment means, per-class bullseyes,
    the territory check, the localisation against a reader's annotations (with a
    label-shuffled twin of the model, `shuffled`, as a reference where given), with
    `faithfulness` ROAD and the randomisation check of the predicted class's CAMs
    (`search.explanation.faithfulness`, on a seeded sample of patients), and (with
    `panels`) one overlay panel per patient (`shuffled_seconds`: what training the twin
    cost, counted in the localisation's cost); files go under `folder` (segments.csv,
    territories.csv, checks.csv, cams.json, bullseye-<class>.png, panels/<patient>.jpg)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids, views = patients.ids, patients.views
    cams = grad_cams(model, patients.x, targets=predicted)  # (N, V, H, W)
    per_view = segment_means(cams.reshape(-1, *cams.shape[2:])).reshape(len(ids), len(views), 17)
    segments = _segment_frame(ids, views, per_view, predicted, class_names, "predicted")

    mean_over_views = per_view.mean(axis=1)
    bullseyes, counts, bullseye_files = {}, {}, {}
    for c, name in enumerate(class_names):
        chosen = predicted == c
        counts[name] = int(chosen.sum())
        if chosen.any():
            bullseyes[name] = mean_over_views[chosen].mean(axis=0)
            title = f"mean Grad-CAM, predicted {name} ({counts[name]} patients)"
            bullseye_files[name] = save_png(
                bullseye_figure(bullseyes[name], title=title), folder / f"bullseye-{name}.png"
            )

    # the true class's CAMs, once, for both the territory check and the localisation
    clock = time.perf_counter()
    known = [i for i, pid in enumerate(ids) if pid in patients.territories]
    needed = sorted({*known, *patients.annotated()})
    true_class = dict(zip(needed, _segments_of(model, patients.x[needed],
                                               patients.labels[needed]), strict=True))  # fmt: skip
    true_seconds = time.perf_counter() - clock
    territories, rate, baseline = _territory_check(patients, predicted, class_names, known,
                                                   true_class)  # fmt: skip
    misclassified = tuple(pid for pid, p, y in zip(ids, predicted, patients.labels, strict=True)
                          if p != y)  # fmt: skip
    drawn = {}
    if panels:
        for i, pid in enumerate(ids):
            truth = class_names[patients.labels[i]]
            figure = cam_panel_figure(
                patients.maps[i], cams[i], views, class_names[predicted[i]],
                float(probabilities[i, predicted[i]]), truth=truth, patient=pid,
            )  # fmt: skip
            drawn[pid] = _save_jpeg(figure, folder / "panels" / f"{pid}.jpg")

    write_atomic(folder / "segments.csv", segments.to_csv(index=False))
    checks = _localisation(shuffled, patients, seed, true_class,
                           true_seconds + shuffled_seconds)  # fmt: skip
    if faithfulness:
        checks = pd.concat([checks, _faithfulness(model, patients.x, cams, predicted, seed)],
                           ignore_index=True)  # fmt: skip
    write_atomic(folder / "territories.csv", territories.to_csv(index=False))
    write_atomic(folder / "checks.csv", checks.to_csv(index=False))
    write_json_atomic(
        folder / "cams.json",
        {"explains": "predicted class (panels, bullseyes); true class (territory check)",
         "territory_match_rate": rate, "territory_match_baseline": baseline,
         "territory_patients": len(territories),
         "bullseyes": {k: v.round(4).tolist() for k, v in bullseyes.items()},
         "bullseye_patients": counts, "misclassified": list(misclassified)},
    )  # fmt: skip
    return CamFindings(
        segments, bullseyes, counts, territories, rate, baseline, len(territories), drawn,
        misclassified, bullseye_files, checks,
    )  # fmt: skip


def _save_jpeg(figure, path: Path) -> Path:
    """Panels are photographs of maps: JPEG keeps a gallery of dozens in a few MB."""
    return write_atomic(path, figure_bytes(figure, "jpeg", 80, pil_kwargs={"quality": 82}))


def _segments_of(model, x: torch.Tensor, targets: np.ndarray) -> np.ndarray:
    """(N, V, 17): the segment means of each patient's and view's CAM of `targets`."""
    if not len(x):
        return np.zeros((0, x.shape[1], 17))
    cams = grad_cams(model, x, targets=targets)
    return segment_means(cams.reshape(-1, *cams.shape[2:])).reshape(len(x), -1, 17)


def _territory_check(patients: TestPatients, predicted, class_names, known, true_class):
    """Per diseased patient with a known territory (`known`, by index): the true class's
    CAM (`true_class`: index -> its segment means per view), its territory means (views
    averaged) and whether the hottest is the true one."""
    columns = ["patient", "true_class", "predicted", "true_territory", *TERRITORY_NAMES,
               "hottest_territory", "match"]  # fmt: skip
    if not known:
        return pd.DataFrame(columns=columns), None, None
    targets = patients.labels[known]
    values = np.stack([true_class[i] for i in known])
    means = territory_means(values.mean(axis=1))
    hottest = hottest_territory(means)
    truth = [patients.territories[patients.ids[i]] for i in known]
    rate, baseline = territory_match(list(hottest), truth)
    frame = pd.DataFrame(
        {
            "patient": [patients.ids[i] for i in known],
            "true_class": [class_names[t] for t in targets],
            "predicted": [class_names[predicted[i]] for i in known],
            "true_territory": truth,
            **{name: means[:, k].round(4) for k, name in enumerate(TERRITORY_NAMES)},
            "hottest_territory": hottest,
            "match": [h == t for h, t in zip(hottest, truth, strict=True)],
        }
    )
    return frame[columns], rate, baseline


def _localisation(
    shuffled, patients: TestPatients, seed: int, true_class: dict, seconds: float = 0.0
) -> pd.DataFrame:
    """Per view: the pointing game and the segment rank correlation of the true class's
    CAMs (`true_class`: index -> segment means per view) against the reader's
    annotations, beside the references (`search.explanation.localisation`); `seconds`,
    what came before (the CAMs, the twin's training), is added to its cost."""
    annotated = patients.annotated()
    if not annotated:
        return pd.DataFrame(columns=CHECK_COLUMNS)
    clock = time.perf_counter()
    per_model = {"grad_cam": np.stack([true_class[i] for i in annotated])}
    if shuffled is not None:
        per_model["label_shuffled"] = _segments_of(shuffled, patients.x[annotated],
                                                   patients.labels[annotated])  # fmt: skip
    figures, ids = [], [patients.ids[i] for i in annotated]
    for v, view in enumerate(patients.views):
        territories = [patients.reader_territories.get(pid, {}).get(view) for pid in ids]
        scores = [patients.reader_scores.get(pid, {}).get(view) for pid in ids]
        figures += localisation_figures(view, {k: m[:, v] for k, m in per_model.items()},
                                        territories, scores, seed=seed)  # fmt: skip
    seconds += time.perf_counter() - clock
    frame = pd.DataFrame([{**asdict(f), "flagged": None, "seconds": seconds} for f in figures],
                         columns=CHECK_COLUMNS)  # fmt: skip
    return frame


def _faithfulness(model, x, cams, predicted, seed: int) -> pd.DataFrame:
    """ROAD (most and least relevant first, Grad-CAM against random maps) and the
    randomisation check, views taken together: the table's rows."""
    road = road_curves(model, x, cams, predicted, seed=seed)
    rows = []
    for (attribution, order), curve in road.curves.items():
        rows.append(_check_row(f"road_{order}_drop", attribution, curve.patient_drops,
                               seed, road.seconds))  # fmt: skip
    randomised = randomisation_check(model, x, predicted, seed=seed, cams=cams)
    correlations = randomised.correlations
    compared = np.isfinite(correlations).any(axis=1)  # a patient whose CAM ranks anything
    per_patient = [row[np.isfinite(row)].mean() for row in correlations[compared]]
    rows.append(_check_row("randomisation_rank_correlation", "grad_cam", per_patient, seed,
                           randomised.seconds, flagged=randomised.flagged))  # fmt: skip
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def _check_row(check, attribution, per_patient, seed, seconds, flagged=None) -> dict:
    """One row of the checks: the mean over patients with its bootstrap interval."""
    values = np.asarray(per_patient, dtype=np.float64)
    low, high = bootstrap_interval(values, seed=seed)
    mean = float(values.mean()) if len(values) else float("nan")
    return {"view": "all", "check": check, "attribution": attribution, "value": mean,
            "low": low, "high": high, "patients": len(values), "flagged": flagged,
            "seconds": seconds}  # fmt: skip


def _segment_frame(ids, views, per_view, targets, class_names, explains) -> pd.DataFrame:
    rows = []
    for i, pid in enumerate(ids):
        for v, view in enumerate(views):
            rows.append(
                {"patient": pid, "view": view, "target": class_names[targets[i]],
                 "explains": explains, **dict(zip(SEGMENT_COLUMNS, per_view[i, v].round(4),
                                                  strict=True))}
            )  # fmt: skip
    return pd.DataFrame(rows)
