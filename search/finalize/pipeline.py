"""Finalize, the orchestration: the search loaded and checked, its winners selected, each
retrained over seeds by the retrainer of its kind (`search.finalize.retrain`), tested once
on the held-out split the search never read and exported (`search.finalize.winner`), the
greedy ensemble, the baseline and the paired comparisons, then the tables, the checklist
and the report. Runs in this process (no Ray): a handful of trials."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from results import load_trials
from results.store import ResultStore
from search.errors import FinalizeError, SearchStateError, SettingsError
from search.finalize.baseline import fit_search_baseline
from search.finalize.comparisons import Candidate, comparison_rows
from search.finalize.decision import decision_curve_rows
from search.finalize.greedy import ensemble_rows, finalize_ensemble, select_greedy_ensemble
from search.finalize.held_out import held_out_patients, labels_of
from search.finalize.rows import final_rows
from search.finalize.search_state import check_finished, check_same_data, load_search
from search.finalize.settings import FinalizeSettings
from search.finalize.tracking import log_finals
from search.finalize.winner import finalize_winner
from search.finalize.winners import select_winners
from search.inference.evaluate import evaluate_predictions
from search.layout import StorageLayout
from search.records import (
    BASELINE_NAME,
    ENSEMBLE_NAME,
    Comparisons,
    EnsembleFinal,
    FinalizedSearch,
    FinalModel,
    GreedyEnsemble,
    first_seeds,
)
from search.reporting.checklist import run_checklist, write_checklist
from search.reporting.model_card import summary_line
from search.reporting.report import write_report
from search.tuning.prepare import PreparedSearch, check_search, prepare_search
from trainables.config import TrialConfig

__all__ = [
    "FinalizeSettings",
    "compare_finals",
    "finalize",
    "finalize_search",
    "held_out_patients",
    "load_search",
]


def finalize(settings: FinalizeSettings, say: Callable[[str], None] = print) -> list[FinalModel]:
    """Retrain and test every winner for every seed; write models and `finals` rows. A
    nested run's name finalizes each of its outer searches and pools them
    (`search.finalize.nested`).

    Raises:
        SearchStateError: the search or its winners cannot be found, or it has not finished.
        FinalizeError: the data set is not the one the search used (its fingerprint or test
            split differ), or its split holds no test patients.
        SearchProblems: the data set has problems.
    """
    return finalize_search(settings, say).finals


def finalize_search(
    settings: FinalizeSettings, say: Callable[[str], None] = print
) -> FinalizedSearch:
    """`finalize`, returning the comparisons, report, checklist and patients too."""
    name, search_row, search_settings = load_search(settings)
    trials = load_trials(settings.results, name)
    check_finished(name, search_row, trials, settings.results)
    winners = select_winners(trials, settings.per, settings.top)
    if winners["config"].isna().any():
        experiment = StorageLayout.of_results(settings.results).experiment(name)
        raise SearchStateError(
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
    dataset = check_search(search_settings, probe_storage=False)  # it writes elsewhere
    prepared = prepare_search(search_settings, dataset)
    check_same_data(prepared, search_row, search_settings)
    if not prepared.split.test:
        raise FinalizeError(f"search {name}: its split holds no test patients to test on")
    if settings.refit and not prepared.split.folds:
        raise SettingsError(
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
            final = finalize_winner(trial, offset, settings, prepared, patients, out)
            rows = final_rows(name, final, search_row)
            store.write_finals(rows)
            say(summary_line(final))
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
    labels = labels_of(prepared, comparisons.baseline_model.test_ids)
    curves = decision_curve_rows(name, finals, comparisons, labels, prepared.data.class_names)
    store.write_decision_curves(name, curves)
    checklist = run_checklist(search_row, searched, prepared, finals, comparisons,
                              pd.DataFrame(curves))  # fmt: skip
    write_checklist(out, checklist, f"search {name}")
    report = write_report(out, name, finals, pd.DataFrame(finals_table), settings.results,
                          search_row, comparisons, checklist, pd.DataFrame(curves))  # fmt: skip
    mlflow = settings.mlflow or searched.mlflow
    if mlflow:
        log_finals(mlflow, name, search_row, finals, finals_table, greedy, out)
        say(f"MLflow: the finalized models are runs under search {name} at {mlflow}")
    say(f"report: {report}")
    return FinalizedSearch(
        name,
        finals,
        comparisons,
        report,
        checklist,
        prepared.data.class_names,
        dict(prepared.data.labels),
        prepared.split.spec.short(),
    )


def compare_finals(
    name: str,
    finals: list[FinalModel],
    prepared: PreparedSearch,
    views: tuple[str, ...],
    settings: FinalizeSettings,
    ensemble: EnsembleFinal | None = None,
) -> Comparisons:
    """The baseline fitted and tested on the same patients, and every paired comparison of
    the winners' first seeds and the baseline on the test patients."""
    classes = prepared.data.class_names
    winners = first_seeds(finals)
    seed = min((f.seed for f in winners), default=0)
    baseline = fit_search_baseline(prepared.data, views, seed)
    labels = labels_of(prepared, baseline.test_ids)
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


def _finalize_ensemble(
    ensemble: GreedyEnsemble,
    finals: list[FinalModel],
    settings: FinalizeSettings,
    prepared: PreparedSearch,
    out: Path,
) -> EnsembleFinal:
    """Each member's first seed (a winner's is reused, the others retrained into
    `out/ensemble`), weighted and tested once."""
    reused = {final.trial["trial_id"]: final for final in first_seeds(finals)}

    def member(trial: dict) -> tuple[tuple[str, ...], np.ndarray, Path]:
        final = reused.get(trial["trial_id"])
        if final is None:
            views = TrialConfig.from_flat(json.loads(trial["config"])).views
            patients = held_out_patients(prepared, trial["backbone"], views)
            final = finalize_winner(
                trial, 0, settings, prepared, patients, out / "ensemble", panels=False
            )  # a member: its figures, not its panels
        return final.test_ids, final.test_probabilities, final.folder

    seed = min((f.seed for f in finals), default=0)
    return finalize_ensemble(ensemble, member, partial(labels_of, prepared),
                             prepared.data.class_names,
                             out / "ensemble", settings.bootstrap, seed)  # fmt: skip
