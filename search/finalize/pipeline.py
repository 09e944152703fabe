"""Finalize: each winner retrained with its own settings over several seeds, then tested
once on the held-out split the search never read; the models exported, the figures put in
the `finals` tables. Runs in this process (no Ray): a handful of trials.

A winner of a cross-validated search is retrained as it ran, one model per fold, and
becomes their ensemble (class probabilities averaged): every training patient was used,
and its epochs were chosen on the folds' mean curve. Its out-of-fold predictions give the
cross-validated figures the report shows beside the test figures, and (binary) the
threshold."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from results import load_searches, load_table, load_trials
from results.store import ResultStore
from search.data.normalize import backbone_input, normalize_maps
from search.finalize.baseline import BASELINE_NAME, BaselineModel, fit_search_baseline
from search.finalize.checklist import run_checklist, write_checklist
from search.finalize.comparisons import Candidate, comparison_rows, first_seeds
from search.finalize.evaluate import (
    EvaluationFigures,
    choose_threshold,
    evaluate_predictions,
    predict_classes,
)
from search.finalize.explain import (
    CamFindings,
    TestPatients,
    explain_model,
    read_defect_territories,
)
from search.finalize.export import ExportedModel, predict_probabilities, save_model
from search.finalize.external import Predictions, write_predictions
from search.finalize.greedy import (
    ENSEMBLE_NAME,
    EnsembleFinal,
    each_patient_once,
    ensemble_rows,
    finalize_ensemble,
    select_greedy_ensemble,
)
from search.finalize.plots import save_evaluation_plots
from search.finalize.report import write_report
from search.finalize.tables import subgroup_rows
from search.finalize.winners import GROUPINGS, select_winners
from search.layout import StorageLayout
from search.provenance import provenance
from search.tuning.prepare import PreparedSearch, check_search, prepare_search
from search.tuning.record import load_settings
from search.tuning.settings import SearchSettings
from trainables.config import TrialConfig
from trainables.data import SearchData, select_views
from trainables.ensemble import ModelEnsemble
from trainables.frozen_store import FrozenWorkStore
from trainables.metrics import METRICS
from trainables.protocol import FoldedData, TrialResult, run_protocol

__all__ = [
    "Comparisons",
    "FinalModel",
    "FinalizeSettings",
    "FinalizedSearch",
    "finalize",
    "finalize_search",
    "held_out_patients",
    "load_search",
]


@dataclass(frozen=True)
class FinalizeSettings:
    """What `polarmap finalize` was asked: which search, which winners, how many seeds."""

    results: str
    search: str | None = None
    per: tuple[str, ...] | None = GROUPINGS
    top: int | None = None
    seeds: int = 3
    threads: int = 2
    bootstrap: int = 1000
    data: Path | None = None  # the data set, when it moved since the search
    cache: Path | None = None
    refit: bool = False  # cross-validated winners: one model on all training patients
    out: Path | None = None  # default: STORAGE/finals/SEARCH beside the tables
    ensemble: bool = True  # the greedy ensemble across the search's trials, as one more


@dataclass
class FinalModel:
    """One winner retrained with one seed and tested."""

    trial: dict[str, Any]  # its row of the trials table
    seed: int
    folder: Path
    figures: EvaluationFigures
    validation: dict[str, Any]
    test_ids: tuple[str, ...]
    test_probabilities: np.ndarray
    test_predicted: np.ndarray
    cams: CamFindings
    subgroups: list[dict]
    plots: dict[str, Path]  # roc, calibration, confusion PNGs
    cross_validated: EvaluationFigures | None = None  # out-of-fold, for a fold ensemble
    members: int = 1  # fold models in the exported ensemble
    refit: bool = False  # one model retrained on every training patient


def load_search(settings: FinalizeSettings) -> tuple[str, dict[str, Any], SearchSettings]:
    """The search's name, its searches row and the settings it ran with.

    Raises:
        ValueError: no such search, several and none named, or its folder is gone.
    """
    searches = load_searches(settings.results)
    names = list(searches["search"])
    if not names:
        raise ValueError(_no_tables(settings.results))
    if settings.search is None and len(names) != 1:
        listed = ", ".join(names)
        raise ValueError(f"{settings.results}: name a search with --search (there: {listed})")
    name = settings.search or names[0]
    if name not in names:
        raise ValueError(f"{settings.results}: no search {name!r} (there: {', '.join(names)})")
    row = searches[searches["search"] == name].iloc[0].to_dict()
    experiment = StorageLayout.of_results(settings.results).experiment(name)
    try:
        search_settings = load_settings(experiment)
    except FileNotFoundError as exc:
        raise ValueError(f"{experiment}: the search's folder (its settings) is needed") from exc
    changes: dict[str, Any] = {"address": None, "cpus_per_trial": 1.0, "gpus_per_trial": 0.0}
    if settings.data is not None:
        changes["data"] = settings.data
    if settings.cache is not None:
        changes["cache"] = settings.cache
    return name, row, replace(search_settings, **changes)


def finalize(settings: FinalizeSettings, say: Callable[[str], None] = print) -> list[FinalModel]:
    """Retrain and test every winner for every seed; write models and `finals` rows. A
    nested run's name finalizes each of its outer searches and pools them
    (`search.finalize.nested`).

    Raises:
        ValueError: the search or its winners cannot be found, or the data set is not the
            one the search used (its fingerprint or test split differ).
        SearchProblems: the data set has problems.
    """
    return finalize_search(settings, say).finals


@dataclass(frozen=True)
class FinalizedSearch:
    """What finalizing one search made: its models, the comparisons, and the data."""

    name: str
    finals: list[FinalModel]
    comparisons: Comparisons
    prepared: PreparedSearch
    report: Path
    checklist: list


def finalize_search(settings: FinalizeSettings, say: Callable[[str], None] = print):
    """`finalize`, returning the comparisons and the prepared data too."""
    name, search_row, search_settings = load_search(settings)
    trials = load_trials(settings.results, name)
    _check_finished(name, search_row, trials, settings.results)
    winners = select_winners(trials, settings.per, settings.top)
    if winners["config"].isna().any():
        experiment = StorageLayout.of_results(settings.results).experiment(name)
        raise ValueError(
            f"search {name}: its trials table has no configurations (written by an older "
            f"version); rebuild it with: polarmap results ingest {experiment}"
        )
    searched = search_settings  # its whole space, for the checklist
    classes = tuple(str(search_row.get("classes") or "").split(","))
    ensemble = (
        select_greedy_ensemble(settings.results, name, trials, classes)
        if settings.ensemble
        else None
    )
    backbones = tuple(
        dict.fromkeys([*winners["backbone"], *(ensemble.backbones if ensemble else ())])
    )
    space = replace(search_settings.space, backbones=backbones)
    search_settings = replace(search_settings, space=space)
    dataset = check_search(search_settings)
    prepared = prepare_search(search_settings, dataset)
    _check_same_data(prepared, search_row, search_settings)
    if not prepared.split.test:
        raise ValueError(f"search {name}: its split holds no test patients to test on")
    if settings.refit and not prepared.split.folds:
        raise ValueError(
            f"--refit retrains a cross-validated winner (search run --folds); search {name} "
            "validated on one split, so its winners are retrained as they ran"
        )
    out = settings.out or StorageLayout.of_results(settings.results).finals(name)
    store = ResultStore(settings.results)
    say(f"finalizing {len(winners)} winners of {name} x {settings.seeds} seeds into {out}")
    finals, finals_table = [], []
    for trial in winners.to_dict("records"):
        views = TrialConfig.from_flat(json.loads(trial["config"])).views
        patients = held_out_patients(prepared, trial["backbone"], views)  # once per winner
        for offset in range(settings.seeds):
            final = _retrain_and_test(trial, offset, settings, prepared, patients, out)
            rows = final_rows(name, final, search_row)
            store.write_finals(rows)
            say(_one_line(final))
            finals.append(final)
            finals_table += rows["finals"]
    greedy = _finalize_ensemble(ensemble, finals, settings, prepared, out) if ensemble else None
    if greedy is not None:
        say(f"  {ENSEMBLE_NAME} of {len(greedy.member_folders)} trials: test balanced accuracy "
            f"{greedy.figures.macro['balanced_accuracy']:.3f} -> {greedy.folder}")  # fmt: skip
    seed0 = min((f.seed for f in finals), default=0)
    store.write_ensembles(name, ensemble_rows(name, greedy, seed0) if greedy else [])
    comparisons = compare_finals(name, finals, prepared, search_settings.views, settings, greedy)
    store.write_comparisons(name, comparisons.rows)
    checklist = run_checklist(search_row, searched, prepared, finals, comparisons)
    write_checklist(out, checklist, f"search {name}")
    report = write_report(out, name, finals, pd.DataFrame(finals_table), settings.results,
                          search_row, comparisons, checklist)  # fmt: skip
    say(f"report: {report}")
    return FinalizedSearch(name, finals, comparisons, prepared, report, checklist)


@dataclass(frozen=True)
class Comparisons:
    """The baseline's test figures and the paired comparisons' rows (`comparisons` table)."""

    baseline: EvaluationFigures
    baseline_views: tuple[str, ...]
    rows: list[dict]
    baseline_model: BaselineModel | None = None
    ensemble: EnsembleFinal | None = None


def compare_finals(name, finals: list[FinalModel], prepared: PreparedSearch,
                   views: tuple[str, ...], settings: FinalizeSettings,
                   ensemble: EnsembleFinal | None = None) -> Comparisons:  # fmt: skip
    """The baseline fitted and tested on the same patients, and every paired comparison of
    the winners' first seeds and the baseline on the test patients."""
    classes = prepared.data.class_names
    winners = first_seeds(finals)
    seed = min((f.seed for f in winners), default=0)
    baseline = fit_search_baseline(prepared.data, views, seed)
    labels = _labels_of(prepared, baseline.test_ids)
    candidates = []
    for final in winners:
        if final.test_ids != baseline.test_ids:  # the same patients, in the same order
            raise AssertionError("finalized models were tested on different patients")
        t = final.trial
        candidates.append(Candidate(f"{t['backbone']} / {t['mode']}", t["trial_id"],
                                    t["backbone"], t["mode"], final.test_probabilities,
                                    final.test_predicted))  # fmt: skip
    if ensemble is not None:
        if ensemble.test_ids != baseline.test_ids:
            raise AssertionError("the ensemble was tested on other patients")
        weighted = (ensemble.test_probabilities, ensemble.test_predicted)
        candidates.append(Candidate(ENSEMBLE_NAME, None, None, None, *weighted))
    plain = Candidate(BASELINE_NAME, None, None, None, baseline.test_probabilities,
                      baseline.test_predicted)  # fmt: skip
    rows = comparison_rows(name, labels, candidates, plain, 2 * settings.bootstrap, seed,
                           class_names=classes)  # fmt: skip
    figures = evaluate_predictions(labels, baseline.test_probabilities, classes,
                                   baseline.threshold, settings.bootstrap, seed)  # fmt: skip
    return Comparisons(figures, views, rows, baseline, ensemble)


def _finalize_ensemble(ensemble, finals: list[FinalModel], settings: FinalizeSettings,
                       prepared: PreparedSearch, out: Path) -> EnsembleFinal:  # fmt: skip
    """Each member's first seed (a winner's is reused, the others retrained into
    `out/ensemble`), weighted and tested once."""
    reused = {final.trial["trial_id"]: final for final in first_seeds(finals)}

    def member(trial: dict) -> tuple[tuple[str, ...], np.ndarray, Path]:
        final = reused.get(trial["trial_id"])
        if final is None:
            views = TrialConfig.from_flat(json.loads(trial["config"])).views
            patients = held_out_patients(prepared, trial["backbone"], views)
            final = _retrain_and_test(
                trial, 0, settings, prepared, patients, out / "ensemble", panels=False
            )  # a member: its figures, not its panels
        return final.test_ids, final.test_probabilities, final.folder

    seed = min((f.seed for f in finals), default=0)
    return finalize_ensemble(ensemble, member, partial(_labels_of, prepared),
                             prepared.data.class_names,
                             out / "ensemble", settings.bootstrap, seed)  # fmt: skip


def _no_tables(results: str) -> str:
    """What to say when `results` holds no searches: most often the storage folder was
    given for its `results` folder."""
    inside = StorageLayout(str(results)).results
    if len(load_searches(inside)):
        return (
            f"{results} holds no result tables, but {inside} does: give the tables' "
            f"folder, polarmap finalize {inside}"
        )
    return (
        f"{results}: no result tables (searches/, trials/ ...) here; give the folder a "
        "search wrote them to, STORAGE/results (search run prints it)"
    )


def _check_finished(name: str, row: dict, trials: pd.DataFrame, results: str) -> None:
    """Winners come from a finished search: an interrupted one has trials cut off
    part-way, whose short runs would compete with finished ones."""
    cut = int((trials["status"] == "interrupted").sum())
    if row.get("status") not in ("running", "interrupted") and not cut:
        return
    experiment = StorageLayout.of_results(results).experiment(name)
    state = f"its searches row says {row.get('status')!r}" + (
        f", {cut} of its trials were cut off" if cut else ""
    )
    raise ValueError(
        f"search {name} has not finished ({state}); finalize picks winners among finished "
        f"trials only. If it is still running, wait for it; else go on with: polarmap "
        f"search resume {experiment}"
    )


def _check_same_data(prepared: PreparedSearch, row: dict, search_settings: SearchSettings):
    data, test = prepared.dataset.fingerprint, prepared.split.test_fingerprint
    if row.get("data_fingerprint") and data != row["data_fingerprint"]:
        raise ValueError(
            f"{search_settings.data}: not the data set the search used (fingerprint "
            f"{data[:12]}, the search's {row['data_fingerprint'][:12]}); give --data"
        )
    if row.get("test_fingerprint") and test != row["test_fingerprint"]:
        raise ValueError("the test split differs from the search's: same seed and shares needed")


def _retrain_and_test(
    trial, offset, settings, prepared: PreparedSearch, patients: TestPatients, out: Path,
    panels: bool = True,
) -> FinalModel:  # fmt: skip
    flat = json.loads(trial["config"])
    seed = int(flat.get("seed", 0)) + offset
    config = TrialConfig.from_flat({**flat, "seed": seed, "threads": settings.threads})
    data: SearchData = prepared.data
    started, clock = datetime.now(UTC), time.perf_counter()
    trial_data = data.for_trial(config.backbone, config.views)
    class_names = data.class_names
    folded = isinstance(trial_data, FoldedData)
    refit = folded and settings.refit
    if refit:  # the epochs cross-validation chose, on every training patient
        config = refit_config(config, trial)
        result = run_protocol(config, trial_data.everyone(), store=FrozenWorkStore(),
                              keep_last=True)  # fmt: skip
        result.best = {"epoch": trial["best_epoch"],
                       f"val_{trial['selection_metric']}": trial["best_selection"]}  # fmt: skip
        model = result.model.cpu().eval()
        val_labels, val_probabilities = search_out_of_fold(settings.results, trial, class_names)
    elif folded:
        result = run_protocol(config, trial_data, store=FrozenWorkStore())
        model = ModelEnsemble([m.cpu().eval() for m in result.models]).eval()
        val_labels, val_probabilities = out_of_fold(result)
    else:
        result = run_protocol(config, trial_data, store=FrozenWorkStore())
        model = result.model.cpu().eval()
        val_labels = trial_data.val_y.numpy()
        val_probabilities = predict_probabilities(model, trial_data.val_x).numpy()
    binary = len(class_names) == 2
    threshold = choose_threshold(val_labels, val_probabilities) if binary else None
    probabilities = predict_probabilities(model, patients.x).numpy()
    predicted = predict_classes(probabilities, threshold)
    figures = evaluate_predictions(
        patients.labels, probabilities, class_names, threshold, settings.bootstrap, seed
    )
    cross_validated = (
        evaluate_predictions(
            val_labels, val_probabilities, class_names, threshold, settings.bootstrap, seed
        )
        if folded
        else None
    )
    figures.extra.update(
        wall_seconds=time.perf_counter() - clock, started=started, ended=datetime.now(UTC),
        device="cuda" if torch.cuda.is_available() else "CPU",
    )  # fmt: skip
    folder = out / f"{trial['backbone']}-{trial['mode']}-{trial['trial_id']}" / f"seed-{seed}"
    members = len(result.models) if folded and not refit else 1
    exported = ExportedModel(
        trial=config.to_flat(),
        class_names=class_names,
        input_size=backbone_input(config.backbone).size,
        threshold=threshold,
        members=members,
        provenance={"search": trial["search"], "trial_id": trial["trial_id"], "seed": seed,
                    "test_fingerprint": prepared.split.test_fingerprint,
                    "split": {part: len(getattr(prepared.split, part))
                              for part in ("train", "val", "test")},
                    "data_fingerprint": prepared.dataset.fingerprint, **provenance()},
    )  # fmt: skip
    # Panels for the first seed only: the reader looks at one model per winner; the
    # segment statistics and the territory check are taken for every seed.
    cams = explain_model(model, patients, probabilities, predicted, class_names,
                         folder / "cams", panels=panels and offset == 0)  # fmt: skip
    subgroups = subgroup_rows(patients.labels, probabilities, patients.metadata, threshold)
    plots = dict(zip(("roc", "calibration", "confusion"),
                     save_evaluation_plots(figures, folder / "figures"), strict=True))  # fmt: skip
    write_predictions(folder / "test-predictions.csv", Predictions(
        patients.ids, class_names, probabilities, predicted, tuple(patients.labels), threshold,
    ))  # fmt: skip
    final = FinalModel(trial, seed, folder, figures, result.best, patients.ids, probabilities,
                       predicted, cams, subgroups, plots, cross_validated, members,
                       refit)  # fmt: skip
    save_model(folder, model, exported, model_card(final, exported))
    return final


def _labels_of(prepared: PreparedSearch, ids: tuple[str, ...]) -> np.ndarray:
    """The class indices of patients `ids`, in their order."""
    return np.asarray([prepared.data.labels[i] for i in ids], dtype=np.int64)


def refit_config(config: TrialConfig, trial: dict[str, Any]) -> TrialConfig:
    """The winner's configuration with the epochs its cross-validation kept: warm-up to its
    best warm-up epoch, then fine-tune to its best fine-tune epoch (none, when no fine-tune
    epoch beat warm-up)."""
    warmup = int(trial["best_warmup_epoch"] or config.warmup_epochs)
    finetune_epoch = trial.get("best_finetune_epoch")
    finetune = 0 if pd.isna(finetune_epoch) else int(finetune_epoch) - config.warmup_epochs
    return replace(config, warmup_epochs=warmup, finetune_epochs=finetune)


def search_out_of_fold(
    results: str, trial: dict[str, Any], class_names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The winner's out-of-fold predictions as the search kept them (`predictions` table),
    each patient once (averaged over repeats), in patient order."""
    rows = load_table(results, "predictions", trial["search"], trial_id=trial["trial_id"])
    if rows.empty:
        raise ValueError(
            f"trial {trial['trial_id']}: no out-of-fold predictions in {results}; rebuild the "
            "tables with polarmap results ingest"
        )
    labels = [class_names.index(label) for label in rows["label"]]
    return each_patient_once(rows["patient_id"], labels, rows["probabilities"])


def out_of_fold(result: TrialResult) -> tuple[np.ndarray, np.ndarray]:
    """Labels and out-of-fold class probabilities of every training patient, in patient
    order, from a cross-validated trial's kept epoch (averaged over repeats, so each
    patient counts once)."""
    kept = json.loads(result.predictions or "{}")
    if not kept:
        raise ValueError("the trial kept no held-out predictions")
    return each_patient_once(kept["patient"], kept["label"], kept["p"])


def held_out_patients(prepared: PreparedSearch, backbone: str, views: tuple[str, ...]):
    """The held-out test patients as `backbone` sees them in `views`: read here, once per
    model, and nowhere in the search."""
    data = prepared.data
    inputs = backbone_input(backbone)
    cleaned = data.maps[inputs.size]
    row = cleaned.index()
    ids = tuple(data.split.test)
    maps = select_views(cleaned, views)[[row[i] for i in ids]]
    labels = np.asarray([data.labels[i] for i in ids], dtype=np.int64)
    source = Path(prepared.dataset.source)
    truth = source.parent / "truth" if source.is_file() else source / "truth"
    territories = read_defect_territories(truth, ids) if truth.is_dir() else {}
    return TestPatients(ids, normalize_maps(maps, inputs), maps, labels, views, territories,
                        _test_metadata(prepared, ids))  # fmt: skip


def _test_metadata(prepared: PreparedSearch, ids: tuple[str, ...]) -> dict[str, list[str]]:
    """Each manifest metadata column's value for the test patients, in `ids` order."""
    by_id = {p.patient_id: p for p in prepared.dataset.patients}
    return {column: [by_id[i].metadata.get(column, "") for i in ids]
            for column in prepared.dataset.metadata_columns}  # fmt: skip


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
    return {"finals": [row], "final_class_metrics": per_class, "final_subgroups": subgroups}


def model_card(final: FinalModel, exported: ExportedModel) -> str:
    """A short model card: what it is, what it was trained and tested on, how well, and
    what it is for (research, not diagnosis)."""
    f, trial, c = final.figures, final.trial, exported.config
    lines = [
        f"# {trial['backbone']} / {trial['mode']} (search {trial['search']}, trial "
        f"{trial['trial_id']}, seed {final.seed})",
        "",
        "**Intended use: research on myocardial perfusion SPECT polar maps. Not for "
        "diagnosis or any clinical decision.**",
        "",
        f"- Input: {' + '.join(c.views)} polar map(s), {exported.input_size} px, cleaned as "
        "polarmap-search cleans exports.",
        f"- Classes: {', '.join(exported.class_names)}"
        + (
            f"; class {exported.class_names[1]} from probability {f.threshold:.3f} (chosen on "
            "validation)"
            if f.threshold is not None
            else "; the most probable class"
        ),
        f"- Model: timm `{c.backbone}`, head widths {list(c.head.widths)}, dropouts "
        f"{list(c.head.dropouts)}; warm-up {c.warmup_epochs} epochs at lr 10^-{c.a:.2f}, "
        f"fine-tune {c.finetune_epochs} epochs of the top {c.unfreeze} layers at lr "
        f"10^-{c.a + 2:.2f}; epochs chosen on validation {c.selection}.",
        *(
            [
                f"- Ensemble: {final.members} fold models (stratified k-fold by patient over "
                "the training patients, each trained without its fold), class probabilities "
                "averaged; their epochs chosen on the folds' mean validation curve."
            ]
            if final.members > 1
            else []
        ),
        *(
            [
                "- Refit: one model on every training patient, for the warm-up and fine-tune "
                "epochs the winner's cross-validation kept (no validation data left to choose "
                "them again)."
            ]
            if final.refit
            else []
        ),
        f"- Data: fingerprint {exported.provenance['data_fingerprint'][:16]}; test split "
        f"fingerprint {exported.provenance['test_fingerprint'][:16]} ({f.count} patients, "
        "never used by the search).",
        "- Split: {train} training, {val} validation, {test} test patients (by patient, "
        "stratified by class).".format(**exported.provenance.get("split", {})),
        "",
        f"## Test figures ({f.count} patients; 95 % intervals over patients: exact for "
        f"proportions, closed forms for balanced accuracy, a bootstrap of {f.bootstrap} "
        "resamples within each class for the rest)",
        "",
        *_figures_table(f),
        f"| expected calibration error | {f.ece:.3f} | |",
        "",
        f"With {f.count} test patients the intervals are wide: read them before the values.",
        "",
        *_card_cv_lines(final.cross_validated),
        *_card_cam_lines(final.cams),
        "",
        f"Versions: {json.dumps(exported.provenance.get('libraries', {}), sort_keys=True)}; "
        f"git {exported.provenance.get('git_revision')}.",
    ]
    return "\n".join(lines) + "\n"


def _card_cv_lines(cv: EvaluationFigures | None) -> list[str]:
    if cv is None:
        return []
    lines = [
        f"## Cross-validated figures ({cv.count} training patients, out-of-fold)",
        "",
        "Each patient predicted by the fold model that did not train on it. The epochs were "
        "chosen on these folds, so these lean optimistic; the test figures above do not.",
        "",
        *_figures_table(cv),
    ]
    return [*lines, ""]


def _figures_table(figures: EvaluationFigures) -> list[str]:
    """Markdown rows: each metric with its 95 % interval."""
    lines = ["| metric | value | 95 % interval |", "| --- | --- | --- |"]
    for metric in METRICS:
        interval = figures.intervals.get(metric)
        shown = f"{interval[0]:.3f} - {interval[1]:.3f}" if interval else "none (resamples agree)"
        count = figures.counts.get(metric)
        value = f"{figures.macro[metric]:.3f}" + (f" ({count[0]}/{count[1]})" if count else "")
        lines.append(f"| {metric.replace('_', ' ')} | {value} | {shown} |")
    return lines


def _card_cam_lines(cams: CamFindings) -> list[str]:
    if cams.match_rate is None:
        return ["Grad-CAM territory check: no ground truth of defect territories.", ""]
    return [
        f"Grad-CAM territory check (synthetic ground truth, {cams.match_patients} patients "
        f"with a defect): the hottest territory is the defect's in {cams.match_rate:.0%}; "
        f"always naming the most common territory gives {cams.match_baseline:.0%}.",
        "",
    ]


def _one_line(final: FinalModel) -> str:
    f, trial = final.figures, final.trial
    low, high = f.intervals.get("balanced_accuracy", (float("nan"), float("nan")))
    return (
        f"  {trial['backbone']}/{trial['mode']} trial {trial['trial_id']} seed {final.seed}: "
        f"test balanced accuracy {f.macro['balanced_accuracy']:.3f} [{low:.3f}, {high:.3f}], "
        f"ROC AUC {f.macro['roc_auc']:.3f}, ECE {f.ece:.3f} ({f.count} patients) -> {final.folder}"
    )
