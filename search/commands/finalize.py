"""`polarmap finalize`: retrain a search's winners over several seeds, test each once on the
held-out split, export the models and write the `finals` tables."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from search.commands.options import comma_names, miscoverage, mlflow_uri, positive_int, refused
from search.errors import SettingsError

if TYPE_CHECKING:
    from search.finalize.settings import FinalizeSettings

__all__ = ["output_problems", "register"]


def register(commands: argparse._SubParsersAction) -> None:
    finalize = commands.add_parser(
        "finalize",
        help="retrain the winners, test them once on the held-out split, export them",
        description="Pick the winners from the trials table (default: the best trial of "
        "each backbone and mode), retrain each with its own settings and compute path for "
        "every seed (epochs chosen on validation, as in the search), then test it once on "
        "the held-out split the search never read: figures with 95 % intervals, "
        "the model exported (safetensors + config + model card), rows in the finals table.",
    )
    finalize.add_argument("results", help="the result tables, e.g. polarmap-runs/results")
    finalize.add_argument("--search", default=None, help="the search (needed when several)")
    winners = finalize.add_mutually_exclusive_group()
    winners.add_argument(
        "--per", default="backbone,mode",
        help="the best trial per backbone, per mode, or per both (default backbone,mode)",
    )  # fmt: skip
    winners.add_argument("--top", type=positive_int, default=None, help="the K best trials instead")
    finalize.add_argument(
        "--seeds", type=positive_int, default=3, help="seeds per winner (default 3)"
    )
    finalize.add_argument("--threads", type=positive_int, default=2, help="CPU threads (default 2)")
    finalize.add_argument(
        "--refit", action="store_true",
        help="cross-validated searches: retrain each winner as one model on every training "
        "patient for the epochs its cross-validation kept (default: its fold models, averaged)",
    )  # fmt: skip
    finalize.add_argument(
        "--bootstrap", type=positive_int, default=1000,
        help="bootstrap resamples for the figures without a closed-form interval; paired "
        "comparisons draw twice as many (default 1000; at least 1: the paired tests need "
        "resamples)",
    )  # fmt: skip
    finalize.add_argument(
        "--no-ensemble", dest="ensemble", action="store_false",
        help="skip the greedy ensemble across the search's trials (default: select it on the "
        "search's held-out predictions, retrain its members, test and compare it)",
    )  # fmt: skip
    finalize.add_argument(
        "--conformal-alpha", type=miscoverage, default=0.1,
        help="prediction sets: each class's patients covered at least 1 - alpha of the time, "
        "calibrated per class on the winner's out-of-fold predictions (default 0.1)",
    )  # fmt: skip
    finalize.add_argument(
        "--mlflow", default=None, metavar="URI",
        help="also write a run per winner and ensemble (test figures, intervals, model card, "
        "weights) and the report to MLflow (default: the store the search was shown in, if "
        "any; docs/tracking.md)",
    )  # fmt: skip
    finalize.add_argument("--data", type=Path, default=None, help="the data set, if it moved")
    finalize.add_argument("--cache", type=Path, default=None, help="map cache folder")
    finalize.add_argument(
        "--out", type=Path, default=None,
        help="models and report folder (default STORAGE/finals/SEARCH beside local tables; "
        "./finals/SEARCH for tables on s3://)",
    )  # fmt: skip
    finalize.set_defaults(func=run_finalize, parser=finalize)


def run_finalize(args: argparse.Namespace) -> int:
    from search.finalize.nested import finalize_any
    from search.finalize.pipeline import FinalizeSettings
    from search.tuning.prepare import SearchProblems

    per = None if args.top is not None else comma_names(args.per)
    settings = FinalizeSettings(
        results=args.results, search=args.search, per=per, top=args.top, seeds=args.seeds,
        threads=args.threads, bootstrap=args.bootstrap, data=args.data, cache=args.cache,
        out=args.out, refit=args.refit, ensemble=args.ensemble,
        conformal_alpha=args.conformal_alpha, mlflow=mlflow_uri(args.mlflow),
    )  # fmt: skip
    unwritable = output_problems(settings)
    if unwritable:
        raise SettingsError(
            f"{len(unwritable)} problem(s) before finalize could start:\n"
            + "\n".join(f"  - {p}" for p in unwritable)
        )
    try:
        finalize_any(settings)
    except SearchProblems as problems:
        return refused(problems)
    return 0


def output_problems(settings: FinalizeSettings) -> list[str]:
    """Where finalize writes, probed before any retraining (`search.files.check_writable`):
    the result tables (its finals rows) and the models and report folder (--out, else the
    storage's finals folder, where every search's finals go)."""
    from search.files import check_writable
    from search.layout import StorageLayout

    out = settings.out or StorageLayout.of_results(settings.results).finals_root
    places = {"result tables": settings.results, "--out" if settings.out else "finals folder": out}
    problems = []
    for name, location in places.items():
        problem = check_writable(location)
        if problem is not None:
            problems.append(f"{name} {location}: {problem}")
    return problems
