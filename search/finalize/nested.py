"""Finalizing a nested run: each outer fold's search finalized like any search (its
winners retrained and tested once on its outer fold, its own report), then the outer
folds' test predictions pooled. Every patient is predicted exactly once, by models whose
whole search (selection and retraining included) never read it, so the pooled figures
are those of the procedure itself, with bootstrap intervals over all the patients.

What is pooled, each from every outer fold: the search's pick (its best trial on
validation: what the procedure would hand over), each backbone and input mode's winner
(first seed), and the baseline. They are compared on the pooled patients as finalize
compares models on a test split, each outer fold's binary threshold kept for its own
patients."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from results import load_searches
from results.store import ResultStore
from search.errors import SearchStateError
from search.finalize.comparisons import Candidate, comparison_rows
from search.finalize.pipeline import FinalizeSettings, finalize, finalize_search
from search.inference.evaluate import evaluate_predictions
from search.layout import StorageLayout
from search.records import (
    BASELINE_NAME,
    ENSEMBLE_NAME,
    FinalizedSearch,
    PooledModel,
    first_seeds,
)
from search.reporting.checklist import nested_checklist, write_checklist
from search.reporting.nested_report import write_nested_report
from search.tuning.settings import FINISHED, outer_search_name

__all__ = ["PICK", "finalize_any", "finalize_nested", "nested_parent"]

log = logging.getLogger(__name__)

PICK = "the search's pick"


def nested_parent(results: str, search: str | None) -> str | None:
    """The nested run `search` names (or, unnamed, the only top-level search when it is
    a nested run); None when it is not one."""
    searches = load_searches(results)
    if "outer_folds" not in searches:
        return None
    top = searches[searches["nested_in"].isna()]
    if search is None:
        if len(top) != 1:
            return None
        search = top.iloc[0]["search"]
    row = top[top["search"] == search]
    if row.empty or row.iloc[0]["outer_folds"] != row.iloc[0]["outer_folds"]:  # NaN: plain
        return None
    return str(search)


def finalize_any(settings: FinalizeSettings, say: Callable[[str], None] = print):
    """`finalize_nested` for a nested run's name, else `finalize`."""
    parent = nested_parent(settings.results, settings.search)
    if parent is None:
        return finalize(settings, say)
    return finalize_nested(replace(settings, search=parent), say)


def finalize_nested(settings: FinalizeSettings, say: Callable[[str], None] = print):
    """Finalize every outer search, pool their test predictions, compare, report.

    Raises:
        ValueError: an outer search is missing or has not finished.
    """
    name = str(settings.search)
    outer_names = _finished_outer_searches(settings.results, name)
    out = settings.out or StorageLayout.of_results(settings.results).finals(name)
    done: list[FinalizedSearch] = []
    for outer, search in enumerate(outer_names):
        say(f"outer fold {outer} of {len(outer_names)}: finalizing {search}")
        done.append(finalize_search(replace(settings, search=search, out=out / search), say))
    pooled = pooled_models(done, settings.bootstrap)
    candidates = [_candidate(p) for p in pooled if p.name != BASELINE_NAME]  # ensemble last
    baseline = next((_candidate(p) for p in pooled if p.name == BASELINE_NAME), None)
    first = pooled[0]
    rows = comparison_rows(name, first.labels, candidates, baseline, 2 * settings.bootstrap,
                           0, "outer folds", first.figures.class_names)  # fmt: skip
    store = ResultStore(settings.results)
    store.write_comparisons(name, rows)
    store.write_outer_predictions(name, outer_prediction_rows(name, pooled, done))
    scheme = done[0].scheme
    sizes = [len(f.finals[0].test_ids) for f in done]
    checklist = nested_checklist(done[0].checklist, scheme, sizes, pooled, rows)
    write_checklist(out, checklist, f"nested run {name}")
    report = write_nested_report(out, name, pooled, rows, done, checklist)
    for p in pooled:
        say(f"{p.name}: pooled balanced accuracy {p.figures.macro['balanced_accuracy']:.3f} "
            f"on {p.figures.count} patients")  # fmt: skip
    say(f"report: {report}")
    return pooled


def pooled_models(done: list[FinalizedSearch], bootstrap: int) -> list[PooledModel]:
    """The pick, each backbone and mode's winner (where every outer fold has one) and
    the baseline, pooled over the outer folds."""
    picks, by_key, baselines = [], {}, []
    for finalized in done:
        winners = first_seeds(finalized.finals)
        picks.append(winners[0])
        for final in winners:
            by_key.setdefault((final.trial["backbone"], final.trial["mode"]), []).append(final)
        baselines.append(finalized.comparisons.baseline_model)
    classes = done[0].class_names
    parts = [(PICK, None, None, picks)]
    parts += [(f"{b} / {m}", b, m, models) for (b, m), models in by_key.items()
              if len(models) == len(done)]  # fmt: skip
    pooled = [_pool(name, models, done, classes, bootstrap, b, m) for name, b, m, models in parts]
    ensembles = [f.comparisons.ensemble for f in done]
    if all(e is not None for e in ensembles):  # each outer fold's own selection
        pooled.append(_pool(ENSEMBLE_NAME, ensembles, done, classes, bootstrap))
    pooled.append(_pool(BASELINE_NAME, baselines, done, classes, bootstrap))
    return pooled


def outer_prediction_rows(name: str, pooled: list[PooledModel], done) -> list[dict]:
    """Rows of the `outer_predictions` table: every pooled model's prediction of every
    patient, with the outer fold and trial that made it."""
    rows = []
    for p in pooled:
        for i, pid in enumerate(p.ids):
            outer = int(p.outer[i])
            rows.append({
                "search": name, "model": p.name, "backbone": p.backbone, "mode": p.mode,
                "outer_fold": outer, "outer_search": done[outer].name,
                "trial_id": p.trials[outer], "patient_id": pid, "label": int(p.labels[i]),
                "predicted": int(p.predicted[i]),
                "probabilities": [float(v) for v in p.probabilities[i]],
            })  # fmt: skip
    return rows


def _pool(name, outputs, done, classes, bootstrap, backbone=None, mode=None) -> PooledModel:
    """Each outer fold's test predictions of one model (a winner's FinalModel, the
    baseline, the ensemble: `test_ids`, `test_probabilities`, `test_predicted`), pooled."""
    ids = tuple(pid for o in outputs for pid in o.test_ids)
    outer = np.concatenate([np.full(len(o.test_ids), i) for i, o in enumerate(outputs)])
    labels = np.concatenate([_labels(f, o.test_ids) for f, o in zip(done, outputs, strict=True)])
    probabilities = np.concatenate([o.test_probabilities for o in outputs])
    predicted = np.concatenate([o.test_predicted for o in outputs])
    figures = evaluate_predictions(labels, probabilities, classes, None, bootstrap, 0, predicted)
    trials = tuple(o.trial["trial_id"] if hasattr(o, "trial") else None for o in outputs)
    return PooledModel(name, backbone, mode, trials, ids, outer, labels, probabilities,
                       predicted, figures)  # fmt: skip


def _labels(finalized: FinalizedSearch, ids) -> np.ndarray:
    labels = finalized.labels
    return np.asarray([labels[i] for i in ids], dtype=np.int64)


def _candidate(p: PooledModel) -> Candidate:
    trial = p.trials[0] if len(set(p.trials)) == 1 else None
    return Candidate(p.name, trial, p.backbone, p.mode, p.probabilities, p.predicted)


def _finished_outer_searches(results: str, name: str) -> list[str]:
    searches = load_searches(results)
    parent = searches[searches["search"] == name].iloc[0]
    outer = searches[searches["nested_in"] == name].sort_values("outer_fold")
    count = int(parent["outer_folds"])
    experiment = StorageLayout.of_results(results).experiment(name)
    found = dict(zip(outer["outer_fold"].astype(int), outer["status"], strict=True))
    waiting = [m for m in range(count) if found.get(m) not in FINISHED]
    if waiting:
        raise SearchStateError(
            f"nested run {name}: outer fold(s) {', '.join(map(str, waiting))} of {count} have "
            f"not finished; finalize pools every outer fold. Go on with: polarmap search "
            f"resume {experiment}"
        )
    return [outer_search_name(name, m) for m in range(count)]
